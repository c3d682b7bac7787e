//! A stream's lifecycle as the rest of the server follows it (the LL-HLS bridge).

use crate::db::StreamMeta;

/// What happened to a stream, sent once its new status is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream went live: its publisher connected, or came back within the grace period.
    Live {
        /// The stream id (also its room).
        stream: String,
        /// Its settings as stored (ladder, DVR, low latency).
        meta: StreamMeta,
    },
    /// The publisher left; the stream waits for it until the grace period ends.
    Reconnecting {
        /// The stream id.
        stream: String,
    },
    /// The stream ended.
    Ended {
        /// The stream id.
        stream: String,
    },
}
