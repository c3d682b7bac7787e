//! What a lifecycle change sets off, done in the order the changes happened.
//!
//! ```text
//! Streams: reserve a slot --lock--> decide (Lifecycle) --> queue the changes --unlock-->
//!   one task, in order: status -> SQLite (database thread), viewer totals stored on `ended`,
//!                       webhook queued, chat told
//! ```
//! A change is decided under the streams' lock and queued before the lock is let go, so the
//! queue holds changes in the order they were decided (a `live` is never stored after the
//! `ended` that followed it). Queueing is a push into memory; the slot was reserved before
//! the lock was taken, so nothing waits while it is held. The I/O happens on the task.

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::warn;

use super::viewers::Viewers;
use crate::chat_link::{ChatLink, notify_live};
use crate::db::{Database, StreamRow};
use crate::lifecycle::Status;
use crate::stream_event::StreamEvent;
use crate::webhook::{EventKind, Webhooks};

/// Decisions waiting for the task before deciders wait for room (each is a few changes; a
/// full queue means the database is stuck).
const QUEUE: usize = 256;

/// One lifecycle change of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The stream's status changed: stored, then announced.
    Status { stream: String, status: Status },
    /// The publisher left and the stream waits for it: announced.
    Reconnecting { stream: String },
}

/// The changes of one decision, and who waits for them to be done.
struct Batch {
    changes: Vec<Change>,
    done: oneshot::Sender<()>,
}

/// Where changes are queued. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Changes {
    queue: mpsc::Sender<Batch>,
}

/// Room for one decision in the queue, reserved before the decision is made.
pub(crate) struct Slot<'a> {
    permit: Option<mpsc::Permit<'a, Batch>>,
}

/// Resolves once a decision's changes are stored and announced.
pub(crate) struct Done {
    done: Option<oneshot::Receiver<()>>,
}

impl Changes {
    /// Start the task that applies changes (needs a tokio runtime).
    pub(crate) fn start(
        db: Database,
        viewers: Viewers,
        webhooks: Option<Webhooks>,
        chat: Option<ChatLink>,
        events: broadcast::Sender<StreamEvent>,
    ) -> Changes {
        let (queue, mut batches) = mpsc::channel::<Batch>(QUEUE);
        let applier = Applier {
            db,
            viewers,
            webhooks,
            chat,
            events,
        };
        tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                for change in batch.changes {
                    applier.apply(change).await;
                }
                // Nobody waiting is fine: most deciders do not.
                let _ = batch.done.send(());
            }
        });
        Changes { queue }
    }

    /// Reserve room for one decision. Await this before taking the lock the decision is made
    /// under.
    pub(crate) async fn reserve(&self) -> Slot<'_> {
        let permit = self.queue.reserve().await.ok();
        if permit.is_none() {
            warn!("the lifecycle task has stopped; changes are not stored");
        }
        Slot { permit }
    }
}

impl Slot<'_> {
    /// Queue `changes` (in memory, never waits). Call it under the lock they were decided
    /// under.
    pub(crate) fn send(self, changes: Vec<Change>) -> Done {
        let Some(permit) = self.permit.filter(|_| !changes.is_empty()) else {
            return Done { done: None };
        };
        let (done, wait) = oneshot::channel();
        permit.send(Batch { changes, done });
        Done { done: Some(wait) }
    }
}

impl Done {
    /// Wait until the changes are stored and announced.
    pub(crate) async fn wait(self) {
        if let Some(done) = self.done {
            // Dropped unanswered only when the task is gone, which `reserve` logged.
            let _ = done.await;
        }
    }
}

/// Does what changes set off.
struct Applier {
    db: Database,
    viewers: Viewers,
    webhooks: Option<Webhooks>,
    chat: Option<ChatLink>,
    events: broadcast::Sender<StreamEvent>,
}

impl Applier {
    async fn apply(&self, change: Change) {
        match change {
            Change::Status { stream, status } => {
                if let Err(e) = self.db.set_status(&stream, status).await {
                    warn!(stream = %stream, "cannot store status: {e}");
                }
                if status == Status::Ended {
                    self.viewers.stream_ended(&stream);
                }
                let kind = EventKind::for_status(status);
                // One read serves the webhook and the followers' live event.
                let row = if (kind.is_some() && self.webhooks.is_some()) || status == Status::Live {
                    self.row(&stream).await
                } else {
                    None
                };
                if let Some(kind) = kind {
                    self.webhook(&stream, row.as_ref(), kind);
                }
                if let Some(link) = &self.chat {
                    notify_live(link, &stream, status == Status::Live);
                }
                self.announce(stream, status, row);
            }
            Change::Reconnecting { stream } => {
                if self.webhooks.is_some() {
                    let row = self.row(&stream).await;
                    self.webhook(&stream, row.as_ref(), EventKind::Reconnecting);
                }
                // Nobody following is fine.
                let _ = self.events.send(StreamEvent::Reconnecting { stream });
            }
        }
    }

    /// The stream as stored, for its webhook and its followers (`None`: deleted since, or
    /// unreadable, which is logged).
    async fn row(&self, id: &str) -> Option<StreamRow> {
        match self.db.get(id).await {
            Ok(row) => row,
            Err(e) => {
                warn!(stream = %id, "no webhook nor live event: cannot read the stream: {e}");
                None
            }
        }
    }

    /// Tell the server's followers (the LL-HLS bridge) about a stored status; a stream gone
    /// live is announced with its settings (`row`).
    fn announce(&self, stream: String, status: Status, row: Option<StreamRow>) {
        let event = match status {
            Status::Live => match row {
                Some(row) => StreamEvent::Live {
                    stream,
                    meta: row.meta,
                },
                None => return,
            },
            Status::Ended => StreamEvent::Ended { stream },
            Status::Created => return,
        };
        let _ = self.events.send(event);
    }

    /// Queue `kind` for stream `id` to every endpoint (nothing when none are configured or
    /// the stream is gone: nobody to tell about it).
    fn webhook(&self, id: &str, row: Option<&StreamRow>, kind: EventKind) {
        if let (Some(hooks), Some(row)) = (&self.webhooks, row) {
            hooks.stream_event(id, row.meta.title.clone(), kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::Db;

    fn changes() -> (Changes, Database) {
        let db = Database::start(Db::in_memory().expect("in-memory database"));
        let window = audience::Window::new(Duration::from_secs(60));
        let viewers = Viewers::new(audience::Audience::in_process(window), db.clone());
        (
            Changes::start(db.clone(), viewers, None, None, broadcast::channel(16).0),
            db,
        )
    }

    fn status(status: Status) -> Change {
        Change::Status {
            stream: "s1".into(),
            status,
        }
    }

    #[tokio::test]
    async fn decisions_are_stored_in_the_order_they_were_queued() {
        let (changes, db) = changes();
        db.ensure("s1", "t", 1).await.expect("created");
        let first = changes.reserve().await.send(vec![status(Status::Live)]);
        let second = changes.reserve().await.send(vec![status(Status::Ended)]);
        second.wait().await;
        let stored = db.get("s1").await.expect("read").expect("exists").status;
        assert_eq!(stored, Status::Ended, "the later decision is stored last");
        // Done once its own changes and every earlier one are.
        tokio::time::timeout(Duration::from_secs(1), first.wait())
            .await
            .expect("the first decision is done too");
    }

    #[tokio::test]
    async fn an_empty_decision_takes_no_room_and_is_done_at_once() {
        let (changes, _db) = changes();
        let done = changes.reserve().await.send(Vec::new());
        assert!(done.done.is_none());
        done.wait().await;
    }
}
