//! WHIP and WHEP sessions as HTTP resources: the token in each `Location`, and what it names.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sfu::{SessionId, SessionKind};

/// A WHIP or WHEP session as an HTTP resource.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) stream: String,
    pub(crate) session: SessionId,
    pub(crate) kind: SessionKind,
    pub(crate) etag: String,
}

/// Every open resource by its token. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Resources {
    by_token: Arc<Mutex<HashMap<String, Resource>>>,
}

impl Resources {
    /// A new resource; a new publisher's replaces the stream's previous publisher's (the SFU
    /// replaced the session).
    pub(crate) fn insert(&self, token: String, resource: Resource) {
        let mut map = self.by_token.lock();
        if resource.kind == SessionKind::Publisher {
            map.retain(|_, r| !(r.stream == resource.stream && r.kind == SessionKind::Publisher));
        }
        map.insert(token, resource);
    }

    /// The resource `token` of `stream`.
    pub(crate) fn get(&self, stream: &str, token: &str) -> Option<Resource> {
        self.by_token
            .lock()
            .get(token)
            .filter(|r| r.stream == stream)
            .cloned()
    }

    /// A new ETag after an ICE restart.
    pub(crate) fn set_etag(&self, token: &str, etag: String) {
        if let Some(r) = self.by_token.lock().get_mut(token) {
            r.etag = etag;
        }
    }

    /// The client deleted its resource.
    pub(crate) fn remove(&self, token: &str) {
        self.by_token.lock().remove(token);
    }

    /// The session ended on the SFU's side.
    pub(crate) fn remove_session(&self, session: SessionId) {
        self.by_token.lock().retain(|_, r| r.session != session);
    }

    /// The stream's publisher was stopped.
    pub(crate) fn remove_publisher(&self, stream: &str) {
        self.by_token
            .lock()
            .retain(|_, r| !(r.stream == stream && r.kind == SessionKind::Publisher));
    }

    /// The stream was deleted.
    pub(crate) fn remove_stream(&self, stream: &str) {
        self.by_token.lock().retain(|_, r| r.stream != stream);
    }

    /// Forget every resource; returns their sessions (to close at shutdown).
    pub(crate) fn take_all(&self) -> Vec<SessionId> {
        self.by_token.lock().drain().map(|(_, r)| r.session).collect()
    }
}
