//! Settings of the origin and of each stream.

use std::path::PathBuf;
use std::time::Duration;

use crate::packager::PackagerConfig;

/// Settings of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Aimed-for part duration (PART-TARGET); video parts are a whole number of frames.
    pub part_target: Duration,
    /// Aimed-for segment duration; segments are cut on keyframes, TARGETDURATION is this
    /// rounded up to whole seconds.
    pub segment_target: Duration,
    /// How much media the live playlist lists and memory holds (at least six target
    /// durations, so that delta updates have something to skip).
    pub live_window: Duration,
    /// How much media the DVR playlist lists and the disk keeps; the VOD playlist lists what
    /// is kept when the stream ends.
    pub dvr_window: Duration,
    /// LL-HLS: the live playlists list parts (EXT-X-PART, PRELOAD-HINT, PART-HOLD-BACK).
    /// Without, they list whole segments only: plain HLS, for players and CDNs that want it.
    pub low_latency: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            live_window: Duration::from_secs(30),
            dvr_window: Duration::from_secs(2 * 3600),
            low_latency: true,
        }
    }
}

impl StreamConfig {
    /// Where a video keyframe ends a segment, counted from the segment's start (see
    /// [`PackagerConfig::keyframe_window`]).
    pub fn keyframe_window(&self) -> std::ops::RangeInclusive<Duration> {
        self.packager().keyframe_window()
    }

    pub(crate) fn packager(&self) -> PackagerConfig {
        PackagerConfig {
            part_target: self.part_target,
            segment_target: self.segment_target,
        }
    }
}

/// Settings of the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// Where DVR segments and VOD playlists go: `<data_dir>/hls/<stream>/<rendition>/`. With
    /// `None`, nothing is written: the DVR playlist covers the live window only and there is
    /// no VOD.
    pub data_dir: Option<PathBuf>,
    /// How many disk writes may queue before new segments are dropped from the DVR (listed
    /// with EXT-X-GAP) rather than stall the media path.
    pub disk_queue: usize,
    /// How long a blocking request waits, in target durations, before a 503.
    pub max_block_target_durations: u32,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            disk_queue: 1024,
            max_block_target_durations: 3,
        }
    }
}
