//! Identifiers shared between the core, the driver and signaling.

use std::fmt;
use std::sync::Arc;

/// One WebRTC session (a publisher or a subscriber), unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A room: one live stream's media, named by the stream id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub Arc<str>);

impl RoomId {
    /// A room id from a stream id.
    pub fn new(id: &str) -> Self {
        RoomId(Arc::from(id))
    }

    /// The stream id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Index of a worker thread (and of its UDP port, `base + index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub usize);
