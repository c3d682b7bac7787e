//! Viewer counts: WHEP sessions, HLS playlist requests that carry a `sid`, heartbeats and chat
//! sockets are marked into the [`audience::Audience`]; the stream resource reads it back; peak
//! and total views are stored when a stream ends. In process, each watched stream's viewer
//! record (lifetime sketch and peak) is also stored at every sweep where it moved and restored
//! at its first mark after a restart, so the numbers survive a restart or a crash.
//!
//! Viewer ids: `sid` values as the player sent them (the same player's playlist requests and
//! heartbeats are one viewer), `whep:<node>:<session>` for WHEP sessions.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use audience::{Audience, AudienceStats};
use parking_lot::Mutex;
use sfu::SessionId;
use tracing::warn;

use crate::db::Database;

/// A stream this process counts viewers of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// First marked; its stored record is being read back. A sweep leaves it alone until
    /// then: storing the counter now would replace the stored sketch with a smaller one.
    Restoring,
    /// Current viewers as of the last sweep.
    Counted(u64),
}

/// Viewer counting. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Viewers {
    inner: Arc<Inner>,
}

struct Inner {
    audience: Audience,
    db: Database,
    /// This process's name in viewer ids (WHEP session ids are only unique per process).
    node_id: String,
    /// Connected WHEP sessions per stream (re-marked at every sweep while they stay).
    whep: Mutex<HashMap<String, HashSet<SessionId>>>,
    watched: Mutex<HashMap<String, Watch>>,
}

impl Viewers {
    pub(crate) fn new(audience: Audience, db: Database) -> Viewers {
        Viewers {
            inner: Arc::new(Inner {
                audience,
                db,
                node_id: format!("{:08x}", rand::random::<u32>()),
                whep: Mutex::default(),
                watched: Mutex::default(),
            }),
        }
    }

    /// Every re-mark period, [`Viewers::sweep`] (needs a tokio runtime).
    pub(crate) fn start_sweeping(&self) {
        let viewers = self.clone();
        let every = self.inner.audience.window().remark_every();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                viewers.sweep().await;
            }
        });
    }

    /// A WHEP session of `stream` connected: it counts from now.
    pub(crate) async fn whep_connected(&self, stream: &str, session: SessionId) {
        self.inner
            .whep
            .lock()
            .entry(stream.to_owned())
            .or_default()
            .insert(session);
        self.mark(stream, &self.whep_viewer(session)).await;
    }

    /// A WHEP session of `stream` closed.
    pub(crate) fn whep_closed(&self, stream: &str, session: SessionId) {
        let mut whep = self.inner.whep.lock();
        if let Some(sessions) = whep.get_mut(stream) {
            sessions.remove(&session);
            if sessions.is_empty() {
                whep.remove(stream);
            }
        }
    }

    /// Connected WHEP viewers of `stream`.
    pub(crate) fn whep_count(&self, stream: &str) -> usize {
        self.inner.whep.lock().get(stream).map_or(0, HashSet::len)
    }

    /// Connected WHEP viewers of every stream.
    pub(crate) fn whep_total(&self) -> usize {
        self.inner.whep.lock().values().map(HashSet::len).sum()
    }

    /// The stream was deleted: its sessions count no more.
    pub(crate) fn forget_whep(&self, stream: &str) {
        self.inner.whep.lock().remove(stream);
    }

    /// The viewer id of a WHEP session of this node.
    fn whep_viewer(&self, session: SessionId) -> String {
        format!("whep:{}:{session}", self.inner.node_id)
    }

    /// `viewer` is watching `stream` now.
    pub(crate) async fn mark(&self, stream: &str, viewer: &str) {
        let restore = self.inner.audience.needs_records();
        let first = match self.inner.watched.lock().entry(stream.to_owned()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(e) => {
                e.insert(if restore {
                    Watch::Restoring
                } else {
                    Watch::Counted(0)
                });
                true
            }
        };
        self.inner.audience.seen(stream, viewer, SystemTime::now());
        if first && restore {
            // First mark since this process started watching it: earlier viewers (before a
            // restart, or an earlier live session) come back from the stored record (a union,
            // so the mark above is not lost).
            self.restore(stream).await;
        }
    }

    async fn restore(&self, stream: &str) {
        match self.inner.db.audience_record(stream).await {
            Ok(Some(record)) => self.inner.audience.restore(stream, &record),
            Ok(None) => {}
            Err(e) => warn!(stream = %stream, "cannot read the stored viewer record: {e}"),
        }
        if let Some(w) = self.inner.watched.lock().get_mut(stream)
            && *w == Watch::Restoring
        {
            *w = Watch::Counted(0);
        }
    }

    /// A viewer from outside signaling (a chat socket) is watching `stream`: marked when the
    /// stream exists, so names of streams that do not exist never reach the counter. Returns
    /// at once; the mark follows (needs a tokio runtime).
    pub(crate) fn mark_known(&self, stream: &str, viewer: &str) {
        let (viewers, stream, viewer) = (self.clone(), stream.to_owned(), viewer.to_owned());
        tokio::spawn(async move {
            match viewers.inner.db.get(&stream).await {
                Ok(Some(_)) => viewers.mark(&stream, &viewer).await,
                Ok(None) => {}
                Err(e) => warn!(stream = %stream, "cannot look the stream up: {e}"),
            }
        });
    }

    /// Store `stream`'s viewer record if it moved since it was last stored (in process).
    async fn save_audience(&self, stream: &str) {
        if let Some(record) = self.inner.audience.unsaved_record(stream)
            && let Err(e) = self.inner.db.store_audience_record(stream, record).await
        {
            warn!(stream = %stream, "cannot store the viewer record: {e}");
        }
    }

    /// A stream's audience: live from the counter, at least what was stored when it ended.
    pub(crate) async fn audience_of(&self, id: &str) -> AudienceStats {
        let mut stats = match self.inner.audience.stats(id, SystemTime::now()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(stream = %id, "cannot read viewer counts: {e}");
                AudienceStats::default()
            }
        };
        match self.inner.db.audience(id).await {
            Ok(Some((peak, total))) => {
                stats.peak = stats.peak.max(peak);
                stats.total = stats.total.max(total);
            }
            Ok(None) => {}
            Err(e) => warn!(stream = %id, "cannot read stored viewer counts: {e}"),
        }
        stats
    }

    /// Every re-mark period: mark the WHEP viewers that are still connected, and compute the
    /// current count of every watched stream (raising its peak; the Prometheus gauge).
    pub(crate) async fn sweep(&self) {
        let now = SystemTime::now();
        let sessions: Vec<(String, Vec<SessionId>)> = self
            .inner
            .whep
            .lock()
            .iter()
            .map(|(id, s)| (id.clone(), s.iter().copied().collect()))
            .collect();
        for (stream, sessions) in &sessions {
            for session in sessions {
                self.mark(stream, &self.whep_viewer(*session)).await;
            }
        }
        let streams: Vec<String> = self
            .inner
            .watched
            .lock()
            .iter()
            .filter(|(_, w)| **w != Watch::Restoring)
            .map(|(s, _)| s.clone())
            .collect();
        for stream in streams {
            let current = match self.inner.audience.stats(&stream, now).await {
                Ok(s) => s.current,
                Err(e) => {
                    warn!(stream = %stream, "cannot read viewer counts: {e}");
                    continue;
                }
            };
            // A crash or restart loses at most one sweep of total views and peak.
            self.save_audience(&stream).await;
            let mut watched = self.inner.watched.lock();
            if watched.get(&stream) == Some(&Watch::Restoring) {
                // Ended and marked again while this sweep ran: the new mark's restore decides.
                continue;
            }
            if current == 0 {
                watched.remove(&stream);
            } else {
                watched.insert(stream, Watch::Counted(current));
            }
        }
    }

    /// The stream ended: store its peak and total views, and let the counter forget it.
    /// Returns at once; the storing follows (needs a tokio runtime).
    pub(crate) fn stream_ended(&self, id: &str) {
        let (viewers, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            let stats = viewers.audience_of(&id).await;
            viewers.save_audience(&id).await;
            if let Err(e) = viewers
                .inner
                .db
                .store_audience(&id, stats.peak, stats.total)
                .await
            {
                warn!(stream = %id, "cannot store viewer counts: {e}");
                return;
            }
            viewers.inner.audience.forget(&id);
            // The next mark restores the record rather than counting from nothing.
            viewers.inner.watched.lock().remove(&id);
        });
    }

    /// Current viewers per watched stream, as of the last sweep.
    pub(crate) fn watched(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .inner
            .watched
            .lock()
            .iter()
            .map(|(s, w)| match w {
                Watch::Restoring => (s.clone(), 0),
                Watch::Counted(n) => (s.clone(), *n),
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::Db;

    fn viewers(db: &Database) -> Viewers {
        let window = audience::Window::new(Duration::from_secs(60));
        Viewers::new(audience::Audience::in_process(window), db.clone())
    }

    #[tokio::test]
    async fn the_first_mark_brings_back_the_stored_record() {
        let db = Database::start(Db::in_memory().expect("in-memory database"));
        db.ensure("s1", "t", 1).await.expect("created");
        let before = viewers(&db);
        for i in 0..50 {
            before.mark("s1", &format!("viewer-{i}")).await;
        }
        before.sweep().await;
        let stored = db
            .audience_record("s1")
            .await
            .expect("read")
            .expect("stored by the sweep");
        assert!(stored.total.count() >= 45, "{}", stored.total.count());

        // A restart: a new counter, the same database.
        let after = viewers(&db);
        after.mark("s1", "viewer-new").await;
        assert_eq!(
            after.watched(),
            [("s1".to_string(), 0)],
            "counted from the next sweep"
        );
        let stats = after.audience_of("s1").await;
        assert!(
            stats.total >= 46,
            "earlier viewers and the new one: {}",
            stats.total
        );
    }

    #[tokio::test]
    async fn whep_sessions_count_per_stream_until_they_close() {
        let db = Database::start(Db::in_memory().expect("in-memory database"));
        let v = viewers(&db);
        v.whep_connected("s1", SessionId(1)).await;
        v.whep_connected("s1", SessionId(2)).await;
        v.whep_connected("s2", SessionId(3)).await;
        assert_eq!((v.whep_count("s1"), v.whep_total()), (2, 3));
        v.whep_closed("s1", SessionId(1));
        v.forget_whep("s2");
        assert_eq!(
            (v.whep_count("s1"), v.whep_count("s2"), v.whep_total()),
            (1, 0, 1)
        );
    }
}
