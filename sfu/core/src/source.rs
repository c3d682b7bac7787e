//! An in-process publisher: media that enters a room without a WebRTC session.
//!
//! RTMP, SRT and RTSP sources are converted to RTP outside the worker (H.264 packetised as
//! RFC 6184 mode 1, audio as Opus) and handed in as [`SourcePacket`]s, one batch per frame.
//! On the room's home worker a source is the room's publisher like a WHIP session: it gets a
//! new epoch, its packets go through the same fan-out, GOP cache, taps and health, and the
//! control plane hears the same `Connected` (at its first packet) / `PublisherVideo` / `Closed`
//! events, so viewers
//! and the stream's lifecycle cannot tell how the media came in.
//!
//! A source cannot be asked for a keyframe the way a WebRTC publisher is (a PLI): the worker
//! raises its [`KeyframeSignal`] instead, which a re-encoding source answers and a
//! passthrough one cannot (new viewers start from the room's GOP cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use str0m::format::PayloadParams;
use str0m::media::MediaKind;

/// One RTP packet from an in-process source.
#[derive(Debug, Clone)]
pub struct SourcePacket {
    /// Audio or video.
    pub kind: MediaKind,
    /// Its codec, with the format parameters a viewer's codec is matched against (H.264's
    /// profile-level-id and packetization-mode, Opus's parameters).
    pub params: PayloadParams,
    /// Sequence number, continuous per track for the life of the source.
    pub seq: u64,
    /// RTP timestamp (90 kHz video, 48 kHz Opus).
    pub rtp_time: u32,
    /// The last packet of a video frame.
    pub marker: bool,
    /// When the source captured it, as far as the server can tell (LL-HLS PROGRAM-DATE-TIME).
    pub capture: Option<SystemTime>,
    /// RTP payload.
    pub payload: Arc<[u8]>,
}

/// Raised by the worker when a viewer or tap of the source's room needs a keyframe.
#[derive(Debug, Clone, Default)]
pub struct KeyframeSignal(Arc<AtomicBool>);

impl KeyframeSignal {
    /// Ask for a keyframe.
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a keyframe was asked for since the last call (and forget it).
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}
