//! Which streams are private, in memory: the HLS guard asks on every request, and a database
//! query per playlist or part would be far too slow.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;

/// Ids of private streams, kept in step with the database by the streams API, and told to
/// the chat (whose private rooms take only sockets with a token). Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct PrivateStreams {
    ids: Arc<RwLock<HashSet<String>>>,
    chat: Option<chat::ChatState>,
}

impl PrivateStreams {
    /// The private streams as stored; each is told to `chat`.
    pub(crate) fn new(
        ids: impl IntoIterator<Item = String>,
        chat: Option<chat::ChatState>,
    ) -> PrivateStreams {
        let streams = PrivateStreams {
            ids: Arc::default(),
            chat,
        };
        for id in ids {
            streams.set(&id, true);
        }
        streams
    }

    fn tell_chat(&self, id: &str, private: bool) {
        let Some(chat) = self.chat.clone() else {
            return;
        };
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = chat.set_stream_private(&id, private).await {
                tracing::warn!(stream = %id, "cannot tell chat whether the stream is private: {e}");
            }
        });
    }

    /// Whether the stream is private (HLS needs a signed path, WHEP a viewer token).
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.read().contains(id)
    }

    /// The stream was created, or its visibility changed.
    pub(crate) fn set(&self, id: &str, private: bool) {
        let changed = {
            let mut ids = self.ids.write();
            if private {
                ids.insert(id.to_owned())
            } else {
                ids.remove(id)
            }
        };
        if changed {
            self.tell_chat(id, private);
        }
    }
}
