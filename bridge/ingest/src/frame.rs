//! What every ingest protocol produces: access units of the source's elementary streams.

use bytes::Bytes;

/// A time on the 90 kHz clock of MPEG-TS and RTP video. Sources start anywhere; only
/// differences within one publication mean something.
pub type Ticks = i64;

/// The 90 kHz clock rate of [`Ticks`].
pub const TICKS_PER_SECOND: i64 = 90_000;

/// One unit of media from a source, in the order the source sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// H.264 parameter sets (from an AVCDecoderConfigurationRecord, or seen in band).
    VideoConfig(VideoConfig),
    /// One H.264 access unit.
    Video(VideoFrame),
    /// The audio track's codec (sent before its first [`Frame::Audio`], and again on a change).
    AudioConfig(AudioCodec),
    /// One audio frame.
    Audio(AudioFrame),
}

/// H.264 parameter sets, NAL units without start codes or length prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoConfig {
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
}

/// One H.264 access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Decode time.
    pub dts: Ticks,
    /// Presentation time; differs from `dts` only when the stream has B-frames (reordering).
    pub pts: Ticks,
    /// Contains an IDR picture: a decoder can start here.
    pub keyframe: bool,
    /// Its NAL units, without start codes or length prefixes (SPS/PPS included when the source
    /// sends them in band).
    pub nalus: Vec<Bytes>,
}

/// The codec of an audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioCodec {
    /// MPEG-4 AAC; `config` is the AudioSpecificConfig (ISO 14496-3), at least 2 bytes.
    Aac {
        /// The AudioSpecificConfig.
        config: Bytes,
    },
    /// Opus (48 kHz clock).
    Opus {
        /// Channels (1 or 2).
        channels: u8,
    },
}

/// One audio frame: a raw AAC access unit (no ADTS header) or one Opus packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Presentation time.
    pub pts: Ticks,
    /// The coded frame.
    pub data: Bytes,
}
