//! Which streams are private, in memory: the HLS guard asks on every request, and a database
//! query per playlist or part would be far too slow.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;

/// Ids of private streams, kept in step with the database by the streams API. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct PrivateStreams {
    ids: Arc<RwLock<HashSet<String>>>,
}

impl PrivateStreams {
    /// The private streams as stored.
    pub(crate) fn new(ids: impl IntoIterator<Item = String>) -> PrivateStreams {
        PrivateStreams {
            ids: Arc::new(RwLock::new(ids.into_iter().collect())),
        }
    }

    /// Whether the stream is private (HLS needs a signed path, WHEP a viewer token).
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.read().contains(id)
    }

    /// The stream was created, or its visibility changed.
    pub(crate) fn set(&self, id: &str, private: bool) {
        let mut ids = self.ids.write();
        if private {
            ids.insert(id.to_owned());
        } else {
            ids.remove(id);
        }
    }
}
