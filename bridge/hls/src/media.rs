//! The packager's input: encoded access units per rendition.
//!
//! This is the one interface producers (the built-in test source, later the transcoder) push
//! into. It is deliberately small: a stream announces its tracks once with a wall-clock anchor,
//! then pushes access units in decode order per track.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// What one track of a stream carries, announced before its first access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackConfig {
    /// H.264 video. Access units are AVC samples: NAL units each prefixed with a 4-byte
    /// big-endian length (no Annex B start codes), as they go into an MP4 sample.
    H264 {
        /// Coded width in pixels.
        width: u32,
        /// Coded height in pixels.
        height: u32,
        /// Frame rate as a fraction (numerator, denominator), e.g. (30, 1).
        frame_rate: (u32, u32),
        /// Target bit rate in bit/s (for BANDWIDTH / AVERAGE-BANDWIDTH before it is measured).
        bitrate: u32,
        /// Sequence parameter sets, without start codes or length prefixes.
        sps: Vec<Bytes>,
        /// Picture parameter sets, without start codes or length prefixes.
        pps: Vec<Bytes>,
    },
    /// AAC-LC audio. Access units are raw AAC frames (no ADTS header).
    Aac {
        /// Samples per second, e.g. 48000.
        sample_rate: u32,
        /// Channel count.
        channels: u8,
        /// Target bit rate in bit/s.
        bitrate: u32,
        /// The AudioSpecificConfig bytes (ISO/IEC 14496-3), as in `esds`.
        audio_specific_config: Bytes,
    },
}

/// One encoded access unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Presentation time, relative to the stream's anchor (see [`MediaSink::start`]).
    pub pts: Duration,
    /// Decode time, relative to the same anchor; equal to `pts` when there are no B-frames.
    pub dts: Duration,
    /// True for an IDR picture (video) — always true for audio frames.
    pub keyframe: bool,
    /// The sample bytes, in the format [`TrackConfig`] describes.
    pub data: Bytes,
}

/// Where a producer pushes a stream's media.
///
/// Calls come from the producer's thread, in this order: `start`, then any number of `push`
/// (decode order within each track, tracks interleaved in any order), then optionally `start`
/// again (a source change: the packager writes a DISCONTINUITY and new init segments), and
/// finally `finish` when the stream ends.
pub trait MediaSink: Send {
    /// A (new) source begins. `tracks[i]` is the track later pushed as index `i`; `anchor` is
    /// the wall-clock time at which `pts == 0`, used for PROGRAM-DATE-TIME.
    fn start(&mut self, tracks: Vec<TrackConfig>, anchor: SystemTime);
    /// One access unit of track `track` (an index into the last `start`'s list).
    fn push(&mut self, track: usize, au: AccessUnit);
    /// The stream ended: the packager closes the last segment and finalises the VOD playlist.
    fn finish(&mut self);
}
