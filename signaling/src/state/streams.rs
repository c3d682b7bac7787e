//! The lifecycles of the streams that had a session since this process started, and the
//! events that drive them: WHIP publishes, SFU session events, the grace timer, a stop, an
//! outside source, the shutdown.
//!
//! Every transition is decided under one short lock and queued to [`Changes`] before the lock
//! is let go; storing, webhooks and chat happen there, never under the lock. SFU calls
//! (closing a session, forgetting a room) are made after the lock is let go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sfu::{SessionId, SessionKind, SfuEvent, SfuHandle};
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::changes::{Change, Changes};
use super::resources::Resources;
use super::viewers::Viewers;
use crate::lifecycle::{Lifecycle, Status};

/// Lifecycles, and what they need to act on the SFU, resources and viewers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Streams {
    inner: Arc<Inner>,
}

struct Inner {
    grace: Duration,
    running: Mutex<HashMap<String, Lifecycle>>,
    sfu: SfuHandle,
    resources: Resources,
    viewers: Viewers,
    changes: Changes,
}

/// A stream's status as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Runtime {
    pub(crate) status: Status,
    /// The publisher is away and expected back.
    pub(crate) reconnecting: bool,
    /// Connected WHEP viewers.
    pub(crate) viewers: usize,
}

impl Streams {
    pub(crate) fn new(
        grace: Duration,
        sfu: SfuHandle,
        resources: Resources,
        viewers: Viewers,
        changes: Changes,
    ) -> Streams {
        Streams {
            inner: Arc::new(Inner {
                grace,
                running: Mutex::default(),
                sfu,
                resources,
                viewers,
                changes,
            }),
        }
    }

    /// Run `f` on the stream's lifecycle, starting it from the stored status.
    fn with<R>(
        running: &mut HashMap<String, Lifecycle>,
        grace: Duration,
        id: &str,
        stored: Status,
        f: impl FnOnce(&mut Lifecycle) -> R,
    ) -> R {
        f(running
            .entry(id.to_owned())
            .or_insert_with(|| Lifecycle::new(stored, grace)))
    }

    /// The SFU accepted a WHIP or WHEP offer for the stream (stored in `stored`).
    pub(crate) fn session_created(&self, id: &str, stored: Status, kind: SessionKind, session: SessionId) {
        let mut running = self.inner.running.lock();
        Self::with(&mut running, self.inner.grace, id, stored, |l| {
            if kind == SessionKind::Publisher {
                l.publish_started(session);
            }
        });
    }

    /// The publisher session of a stream, while one is connecting or connected.
    pub(crate) fn publisher(&self, id: &str) -> Option<SessionId> {
        self.inner.running.lock().get(id).and_then(Lifecycle::publisher)
    }

    /// Status, reconnecting flag and WHEP viewers of a stream stored in `stored`.
    pub(crate) fn runtime(&self, id: &str, stored: Status) -> Runtime {
        let (status, reconnecting) = match self.inner.running.lock().get(id) {
            Some(l) => (l.status(), l.reconnecting()),
            None => (stored, false),
        };
        Runtime {
            status,
            reconnecting,
            viewers: self.inner.viewers.whep_count(id),
        }
    }

    /// Streams with a publisher or viewers since this process started.
    pub(crate) fn running(&self) -> usize {
        self.inner.running.lock().len()
    }

    /// Ids of the streams that are live now.
    pub(crate) fn live(&self) -> Vec<String> {
        self.inner
            .running
            .lock()
            .iter()
            .filter(|(_, l)| l.status() == Status::Live)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A deleted stream leaves nothing behind.
    pub(crate) fn forget(&self, id: &str) {
        self.inner.running.lock().remove(id);
        self.inner.resources.remove_stream(id);
        self.inner.viewers.forget_whep(id);
    }

    /// Kick the publisher and end the stream now, without a reconnect grace; returns once the
    /// end is stored. False when the stream is not live.
    pub(crate) async fn stop(&self, id: &str, stored: Status) -> bool {
        let slot = self.inner.changes.reserve().await;
        let (publisher, done) = {
            let mut running = self.inner.running.lock();
            let publisher = Self::with(&mut running, self.inner.grace, id, stored, |l| {
                (l.status() == Status::Live).then(|| l.stop())
            });
            let Some(publisher) = publisher else {
                return false;
            };
            (publisher, slot.send(vec![ended(id)]))
        };
        self.inner.resources.remove_publisher(id);
        if let Some(session) = publisher {
            // Gone already (ICE timeout) is fine: the stream ends either way.
            let _ = self.inner.sfu.close(session);
        }
        info!(stream = %id, "stream stopped");
        self.inner.sfu.room_ended(id);
        done.wait().await;
        true
    }

    /// A source outside the SFU started feeding the stream (stored in `stored`); returns once
    /// the change is stored.
    pub(crate) async fn source_started(&self, id: &str, stored: Status) {
        let slot = self.inner.changes.reserve().await;
        let done = {
            let mut running = self.inner.running.lock();
            let changed = Self::with(
                &mut running,
                self.inner.grace,
                id,
                stored,
                Lifecycle::source_started,
            );
            slot.send(changed.map(|s| status(id, s)).into_iter().collect())
        };
        done.wait().await;
    }

    /// The server is shutting down: end every live stream; returns how many ended, once their
    /// ends are stored and announced.
    pub(crate) async fn end_all(&self) -> usize {
        let slot = self.inner.changes.reserve().await;
        let (ended_ids, done) = {
            let mut running = self.inner.running.lock();
            let ended_ids: Vec<String> = running
                .iter_mut()
                .filter_map(|(id, l)| l.end().map(|_| id.clone()))
                .collect();
            let done = slot.send(ended_ids.iter().map(|id| ended(id)).collect());
            (ended_ids, done)
        };
        for id in &ended_ids {
            self.inner.sfu.room_ended(id);
        }
        done.wait().await;
        ended_ids.len()
    }

    /// Follow the SFU's session events on a task of their own (needs a tokio runtime).
    pub(crate) fn follow_sfu(&self) {
        let streams = self.clone();
        let mut events = self.inner.sfu.events();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => streams.on_event(e).await,
                    Err(RecvError::Lagged(n)) => warn!("missed {n} SFU events"),
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// Follow one SFU event.
    async fn on_event(&self, e: SfuEvent) {
        match e {
            SfuEvent::Connected {
                session, room, kind, ..
            } => match kind {
                SessionKind::Publisher => self.publisher_connected(room.as_str(), session).await,
                SessionKind::Subscriber => {
                    let known = self.inner.running.lock().contains_key(room.as_str());
                    if known {
                        self.inner.viewers.whep_connected(room.as_str(), session).await;
                    }
                }
            },
            SfuEvent::Closed { session, room, kind } => {
                self.inner.resources.remove_session(session);
                match kind {
                    SessionKind::Publisher => self.publisher_closed(room.as_str(), session).await,
                    SessionKind::Subscriber => self.inner.viewers.whep_closed(room.as_str(), session),
                }
            }
            // The SFU's handle keeps what viewers need from it.
            SfuEvent::PublisherVideo { .. } => {}
        }
    }

    async fn publisher_connected(&self, id: &str, session: SessionId) {
        let slot = self.inner.changes.reserve().await;
        let mut running = self.inner.running.lock();
        let Some(l) = running.get_mut(id) else {
            return;
        };
        let changed = l.publisher_connected(session);
        slot.send(changed.map(|s| status(id, s)).into_iter().collect());
    }

    async fn publisher_closed(&self, id: &str, session: SessionId) {
        let slot = self.inner.changes.reserve().await;
        let deadline = {
            let mut running = self.inner.running.lock();
            let Some(l) = running.get_mut(id) else {
                return;
            };
            let was = l.status();
            let deadline = l.publisher_closed(session, Instant::now());
            let mut changes = Vec::new();
            if deadline.is_some() {
                changes.push(Change::Reconnecting {
                    stream: id.to_owned(),
                });
            }
            if was != Status::Ended && l.status() == Status::Ended {
                changes.push(ended(id));
            }
            slot.send(changes);
            deadline
        };
        if let Some(deadline) = deadline {
            info!(stream = %id, "publisher gone; waiting for it to come back");
            let (streams, id) = (self.clone(), id.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                streams.expire(&id).await;
            });
        }
    }

    /// The grace timer ran out: the stream ends unless its publisher came back.
    async fn expire(&self, id: &str) {
        let slot = self.inner.changes.reserve().await;
        let ended_now = {
            let mut running = self.inner.running.lock();
            let Some(l) = running.get_mut(id) else {
                return;
            };
            let changed = l.poll(Instant::now());
            slot.send(changed.map(|s| status(id, s)).into_iter().collect());
            changed.is_some()
        };
        if ended_now {
            info!(stream = %id, "stream ended");
            self.inner.sfu.room_ended(id);
        }
    }
}

fn status(id: &str, status: Status) -> Change {
    Change::Status {
        stream: id.to_owned(),
        status,
    }
}

fn ended(id: &str) -> Change {
    status(id, Status::Ended)
}
