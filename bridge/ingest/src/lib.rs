//! Ingest protocols as elementary-stream access units.
//!
//! Each protocol adapter (RTMP server, SRT listener, RTSP pull) turns its connection into
//! [`Frame`]s: H.264 access units as NAL units with 90 kHz decode and presentation times,
//! and audio frames (AAC with its AudioSpecificConfig, or Opus). Where they go is not this
//! crate's business: a [`Gate`] decides whether a publisher may publish (it checks the stream
//! key) and hands back a [`Sink`] for its frames; the bridge's implementation feeds a room.
//!
//! The parsers of untrusted bytes (FLV tags, H.264 configuration records, MPEG-TS) are pure
//! and never panic on any input; each has a property test.

pub mod flv;
pub mod frame;
pub mod gate;
pub mod h264;
pub mod rtmp;
pub mod rtmp_session;
pub mod rtp_h264;
pub mod rtsp;
pub mod srt;
pub mod ts;

pub use frame::{AudioCodec, AudioFrame, Frame, Ticks, VideoConfig, VideoFrame};
pub use gate::{Gate, Protocol, PublishRequest, Refusal, Sink, SinkClosed};
pub use srt::{SrtConfig, SrtError, SrtListener};
pub use ts::{TsDemuxer, TsStats};
