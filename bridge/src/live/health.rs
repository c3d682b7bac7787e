//! What a room's bridge reports about itself, for the stream's health and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where a room's bridge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeState {
    /// Waiting for the publisher's media to settle (or to come back).
    Starting,
    /// Transcoding into LL-HLS.
    Live,
    /// The publisher is away: the slate is on.
    Slate,
    /// The transcoder failed and is being restarted.
    Restarting,
    /// The stream ended.
    Stopped,
}

impl BridgeState {
    /// Its name in the stream's health.
    pub fn as_str(self) -> &'static str {
        match self {
            BridgeState::Starting => "starting",
            BridgeState::Live => "live",
            BridgeState::Slate => "slate",
            BridgeState::Restarting => "restarting",
            BridgeState::Stopped => "stopped",
        }
    }
}

/// A snapshot of one bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeHealth {
    /// Where it stands.
    pub state: BridgeState,
    /// The encoder and decoder in use.
    pub encoder: String,
    /// The renditions, e.g. `1280x720`, top first (empty before the first start).
    pub renditions: Vec<String>,
    /// The source's video codec, when there is video.
    pub video_codec: Option<String>,
    /// The top rung is the source's own H.264 (an ingest source), not decoded or encoded.
    pub top_rung_copied: bool,
    /// The audio rendition is the source's own AAC (an ingest source), not transcoded.
    pub audio_copied: bool,
    /// Whether the source has audio.
    pub audio: bool,
    /// What PROGRAM-DATE-TIME is based on: `capture` (sender reports) or `arrival`.
    pub clock: Option<&'static str>,
    /// Transcoder restarts after a fault.
    pub restarts: u64,
    /// The last fault, if any.
    pub last_error: Option<String>,
}

/// Counters over every bridge of the process.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Transcoder starts (first starts and restarts).
    pub starts: AtomicU64,
    /// Restarts after a pipeline error.
    pub faults: AtomicU64,
    /// Restarts after the publisher was away or changed codec.
    pub resumes: AtomicU64,
    /// Times the slate took over.
    pub slates: AtomicU64,
}

impl BridgeStats {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
