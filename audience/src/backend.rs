//! [`Audience`]: the one handle services use, in process or in Redis.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::counter::{AudienceRecord, AudienceStats, ViewerCounter};
use crate::redis_store::{RedisStore, RedisStoreError};
use crate::window::Window;

/// Where viewer counts live. Cheap to clone; every clone counts into the same place.
#[derive(Debug, Clone)]
pub enum Audience {
    /// This process only (the embedded default).
    InProcess(Arc<Mutex<ViewerCounter>>),
    /// Redis, shared by every node that uses the same URL (and the same window).
    Redis(RedisStore),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::in_process(Window::default())
    }
}

impl Audience {
    /// Counts in this process.
    pub fn in_process(window: Window) -> Self {
        Audience::InProcess(Arc::new(Mutex::new(ViewerCounter::new(window))))
    }

    /// Counts in the Redis at `url`. Needs a tokio runtime.
    pub fn redis(url: &str, window: Window) -> Result<Self, RedisStoreError> {
        Ok(Audience::Redis(RedisStore::new(url, window)?))
    }

    /// The window it counts over.
    pub fn window(&self) -> Window {
        match self {
            Audience::InProcess(c) => c.lock().window(),
            Audience::Redis(r) => r.window(),
        }
    }

    /// `viewer` is watching `stream` at `now`. Never waits on the network.
    pub fn seen(&self, stream: &str, viewer: &str, now: SystemTime) {
        match self {
            Audience::InProcess(c) => c.lock().seen(stream, viewer, now),
            Audience::Redis(r) => r.seen(stream, viewer, now),
        }
    }

    /// Current, peak and total of `stream` at `now` (computing the current count raises the
    /// peak).
    pub async fn stats(&self, stream: &str, now: SystemTime) -> Result<AudienceStats, RedisStoreError> {
        match self {
            Audience::InProcess(c) => Ok(c.lock().stats(stream, now)),
            Audience::Redis(r) => r.stats(stream, now).await,
        }
    }

    /// In process: `stream`'s record to store, when it moved since the last call. Redis
    /// keeps its own (`None`).
    pub fn unsaved_record(&self, stream: &str) -> Option<AudienceRecord> {
        match self {
            Audience::InProcess(c) => c.lock().unsaved_record(stream),
            Audience::Redis(_) => None,
        }
    }

    /// In process: fold a stored record back in (after a restart). Redis: nothing to do.
    pub fn restore(&self, stream: &str, record: &AudienceRecord) {
        if let Audience::InProcess(c) = self {
            c.lock().restore(stream, record);
        }
    }

    /// Whether records are kept by the caller (in process) rather than by Redis.
    pub fn needs_records(&self) -> bool {
        matches!(self, Audience::InProcess(_))
    }

    /// Drop this process's state of `stream` (it ended). Redis keys expire on their own.
    pub fn forget(&self, stream: &str) {
        if let Audience::InProcess(c) = self {
            c.lock().forget(stream);
        }
    }
}
