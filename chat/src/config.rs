//! The chat service's configuration: one struct, with the defaults `fanout chat` runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::JwtConfig;
use crate::ledger::LedgerRules;
use crate::rate_limit::FRAMES_PER_SEC;
use crate::room::RoomConfig;
use crate::viewers::ViewerMarks;

/// Chat service configuration.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Listen address (default `0.0.0.0:8081`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// Cluster mode: shared ledger and fan-out through this Redis (e.g. `redis://127.0.0.1/`).
    pub redis_url: Option<String>,
    /// Token verification.
    pub jwt: JwtConfig,
    /// Where the archive (`chat.sqlite3`) lives.
    pub data_dir: PathBuf,
    /// Filters and join history.
    pub room: RoomConfig,
    /// Per-user message rate limit ([`crate::rate_limit::RateLimit`]) and recent-history length.
    pub ledger: LedgerRules,
    /// Shortest gap between two fan-out frames of a room (0: no batching). A frame that finds
    /// the room quiet for this long goes out at once; frames arriving closer together are
    /// coalesced until the gap has passed.
    pub batch_window: Duration,
    /// Longest gap the room may stretch to so that its socket writes stay within
    /// `room_writes_per_sec` (large rooms).
    pub max_batch_window: Duration,
    /// Socket writes per second one room aims to stay under on this node: the gap grows with
    /// the room's local sockets (`sockets / room_writes_per_sec`), between `batch_window` and
    /// `max_batch_window`.
    pub room_writes_per_sec: u32,
    /// Frames a socket's outbox may hold (written while it would block) before it is told
    /// and closed as a slow consumer.
    pub outbox_frames: usize,
    /// Longest a socket may take to accept a write before it is closed as a slow consumer
    /// (its buffers are full by then, so it cannot be told why).
    pub write_timeout: Duration,
    /// Client frames per second one socket may send (the frame budget of
    /// [`crate::rate_limit`], which sets its burst and when a flood is closed).
    pub inbound_per_sec: u32,
    /// How long an empty room stays loaded.
    pub room_idle: Duration,
    /// This node's name in Redis presence (default: random).
    pub node_id: Option<String>,
    /// Tell someone about every socket as a viewer of its stream (viewer counts).
    pub viewer_marks: Option<ViewerMarks>,
    /// The listener's header timeout and connection cap.
    pub http: fanout_httpd::HttpLimits,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            redis_url: None,
            jwt: JwtConfig::default(),
            data_dir: PathBuf::from("./data"),
            room: RoomConfig::default(),
            ledger: LedgerRules::default(),
            batch_window: Duration::from_millis(10),
            max_batch_window: Duration::from_millis(100),
            room_writes_per_sec: 100_000,
            outbox_frames: 256,
            write_timeout: Duration::from_secs(5),
            inbound_per_sec: FRAMES_PER_SEC,
            room_idle: Duration::from_secs(30),
            node_id: None,
            viewer_marks: None,
            http: fanout_httpd::HttpLimits::default(),
        }
    }
}
