//! A worker's view of one room.

use std::collections::BTreeSet;
use std::time::Duration;

use str0m::media::Rid;

use crate::gop_cache::GopCache;
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::ingest_health::IngestHealth;
use crate::keyframes::KeyframeThrottle;
use crate::layer_stats::LayerStats;
use crate::tap::Tap;

/// What one worker knows about a room: on the home worker the publisher and which other
/// workers want its packets; on every worker the local subscribers and the layer bitrates.
#[derive(Debug)]
pub struct Room {
    /// The worker that hosts the publisher.
    pub home: WorkerId,
    /// The live publisher session (home worker only).
    pub publisher: Option<SessionId>,
    /// How many publisher sessions this room has had (home worker only).
    pub epoch: u32,
    /// Subscribers on this worker.
    pub subscribers: Vec<SessionId>,
    /// Other workers with subscribers (home worker only).
    pub remote_workers: BTreeSet<WorkerId>,
    /// Bitrate per simulcast layer as seen here.
    pub layers: LayerStats,
    /// Keyframe requests leaving this worker for the room.
    pub keyframes: KeyframeThrottle,
    /// Each layer since its latest keyframe, for viewers that just connected.
    pub gops: GopCache,
    /// How the publisher's media arrives (home worker only).
    pub health: IngestHealth,
    /// In-process subscribers without a WebRTC session (home worker only).
    pub taps: Vec<Tap>,
    /// The highest simulcast layer the publisher's offer declares (home worker only; `None`
    /// without simulcast).
    pub declared_top: Option<Rid>,
}

impl Room {
    /// An empty room view.
    pub fn new(home: WorkerId) -> Self {
        Room {
            home,
            publisher: None,
            epoch: 0,
            subscribers: Vec::new(),
            remote_workers: BTreeSet::new(),
            layers: LayerStats::default(),
            keyframes: KeyframeThrottle::new(Duration::from_millis(250)),
            gops: GopCache::default(),
            health: IngestHealth::default(),
            taps: Vec::new(),
            declared_top: None,
        }
    }

    /// Whether the view holds nothing and can be dropped.
    pub fn is_idle(&self) -> bool {
        self.publisher.is_none()
            && self.subscribers.is_empty()
            && self.remote_workers.is_empty()
            && self.taps.is_empty()
    }
}

/// The worker that hosts a room's publisher: a stable hash of the room id.
pub fn home_worker(room: &RoomId, workers: usize) -> WorkerId {
    // FNV-1a: stable across processes and versions, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    WorkerId((h % workers.max(1) as u64) as usize)
}
