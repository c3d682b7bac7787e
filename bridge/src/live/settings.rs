//! What a room's bridge makes: the server's defaults and a stream's own choices.

use std::time::Duration;

use crate::encoder::EncoderChoice;
use crate::ladder::SpeedPreset;

/// The server's settings for every bridge (`--hls-ladder`, `--hls-encoder`, ...).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Ladder heights, top first, for streams that do not choose their own.
    pub ladder: Vec<u32>,
    /// The encoder the probe chose at start-up.
    pub encoder: EncoderChoice,
    /// x264's speed preset.
    pub speed_preset: SpeedPreset,
    /// Output frames per second.
    pub frame_rate: u32,
    /// Distance between keyframes (a segment boundary may fall on each).
    pub keyframe_interval: Duration,
    /// AAC bit rate, bit/s.
    pub audio_bitrate: u32,
    /// Silence from the publisher after which the slate shows.
    pub slate_after: Duration,
    /// The tap's queue, in packets (about two seconds of a 3 Mb/s layer).
    pub tap_capacity: usize,
}

impl BridgeConfig {
    /// The defaults with `encoder`.
    pub fn new(encoder: EncoderChoice) -> Self {
        BridgeConfig {
            ladder: DEFAULT_LADDER.to_vec(),
            encoder,
            speed_preset: SpeedPreset::Ultrafast,
            frame_rate: 30,
            keyframe_interval: Duration::from_secs(2),
            audio_bitrate: 128_000,
            slate_after: Duration::from_secs(1),
            tap_capacity: 1024,
        }
    }
}

/// The default ladder, the standard rungs up to 720p: one 720p30 source costs 43 % of one
/// core here and four such rooms still bridge in real time on two cores (docs/benchmarks.md,
/// "Bridge cost"). A 1080p source gets a 720p top rung; add 1080 where there is CPU for it.
pub const DEFAULT_LADDER: [u32; 3] = [720, 480, 360];

/// A stream's own settings, from the streams API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSettings {
    /// Its ladder, `None` for the server's.
    pub ladder: Option<Vec<u32>>,
    /// Keep segments on disk for the DVR window and the VOD (`enableDvr`).
    pub dvr: bool,
    /// LL-HLS parts (`lowLatencyMode`); without, plain HLS segments only.
    pub low_latency: bool,
}

impl StreamSettings {
    /// The packager's settings for these choices.
    pub fn hls(&self) -> hls::StreamConfig {
        let defaults = hls::StreamConfig::default();
        hls::StreamConfig {
            dvr_window: if self.dvr {
                defaults.dvr_window
            } else {
                defaults.live_window
            },
            low_latency: self.low_latency,
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streams_choices_reach_the_packager() {
        let plain = StreamSettings {
            ladder: None,
            dvr: false,
            low_latency: false,
        }
        .hls();
        assert!(!plain.low_latency);
        assert_eq!(
            plain.dvr_window, plain.live_window,
            "no DVR: the live window only"
        );
        let full = StreamSettings {
            ladder: None,
            dvr: true,
            low_latency: true,
        }
        .hls();
        assert!(full.low_latency && full.dvr_window > full.live_window);
    }
}
