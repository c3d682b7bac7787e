//! A room tap: an in-process subscriber with no WebRTC session, for the LL-HLS bridge.
//!
//! A tap gets the publisher's audio and the video of one simulcast layer, the highest the
//! publisher is sending (it follows the publisher down when a layer stops and back up at the
//! next keyframe of the higher one). Its packets go through the same [`Forwarder`]s a
//! viewer's do, so the tap sees one continuous sequence and timestamp space per track across
//! layer switches and publisher reconnects, switching only at keyframes.
//!
//! The packets are offered to a bounded [`TapQueue`] that the consumer drains on its own
//! thread; the worker never waits for it. When the queue is full the tap drops the packet,
//! and for video everything after it until the next keyframe, so the consumer's decoder never
//! gets a picture whose references are missing; the worker asks the publisher for that
//! keyframe through the room's throttle. The dropped packets still take their sequence
//! numbers, so the consumer sees the gap.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Rid};

use crate::forwarder::{Forwarded, Forwarder};
use crate::packet::MediaPacket;

/// Names one tap, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapId(pub u64);

impl fmt::Display for TapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tap-{}", self.0)
    }
}

/// One RTP packet as a tap's consumer gets it.
#[derive(Debug, Clone)]
pub struct TapPacket {
    /// Audio or video.
    pub kind: MediaKind,
    /// The publisher's codec for it (codec, clock rate, format parameters).
    pub params: PayloadParams,
    /// Sequence number, continuous per track across layer switches and publishers.
    pub seq: u64,
    /// RTP timestamp, continuous per track in the same way.
    pub rtp_time: u32,
    /// Marker bit (the last packet of a video frame).
    pub marker: bool,
    /// The first packet of a keyframe (video).
    pub keyframe: bool,
    /// The simulcast layer it came from.
    pub rid: Option<Rid>,
    /// The room's publisher session count when it was sent (a change is a new publisher).
    pub epoch: u32,
    /// When the server received it.
    pub received: Instant,
    /// When the publisher captured it, from the publisher's RTCP sender reports, once known.
    pub capture: Option<SystemTime>,
    /// It comes from the highest layer the publisher declared (always, without simulcast):
    /// a browser turns its higher layers on as its estimate grows, and the bridge waits for
    /// the top one before it chooses its ladder.
    pub top_layer: bool,
    /// RTP payload, shared with every viewer.
    pub payload: Arc<[u8]>,
}

/// Where a tap's packets go: a bounded queue owned by the consumer.
pub trait TapQueue: Send + fmt::Debug {
    /// Take `packet` if there is room; `false` leaves it untaken. Must not block.
    fn offer(&self, packet: TapPacket) -> bool;
}

/// What became of one packet at a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapOutcome {
    /// Not for the tap (another layer, before the switch point).
    Skipped,
    /// In the consumer's queue.
    Queued,
    /// Dropped: the queue was full, or video waits for a keyframe after an overflow.
    Dropped {
        /// The drop began a wait for a keyframe, which the worker should request.
        wants_keyframe: bool,
    },
}

/// A tap's state on the room's home worker.
#[derive(Debug)]
pub struct Tap {
    id: TapId,
    queue: Box<dyn TapQueue>,
    audio: Forwarder,
    video: Forwarder,
    /// Video is dropped until the next keyframe since this time: the queue overflowed.
    recovering: Option<Instant>,
    /// Packets dropped because the consumer fell behind.
    pub dropped: u64,
}

impl Tap {
    /// A tap that delivers into `queue`.
    pub fn new(id: TapId, queue: Box<dyn TapQueue>) -> Tap {
        Tap {
            id,
            queue,
            audio: Forwarder::new(MediaKind::Audio),
            video: Forwarder::new(MediaKind::Video),
            recovering: None,
            dropped: 0,
        }
    }

    /// Its id.
    pub fn id(&self) -> TapId {
        self.id
    }

    /// Follow the highest active layer. `layers` lists them from lowest to highest; it is
    /// empty for a single-layer track.
    pub fn allocate(&mut self, layers: &[(Rid, u64)], now: Instant) {
        let top = layers.last().map(|(rid, _)| *rid);
        self.video.set_target(top, now);
    }

    /// The video layer a keyframe is awaited on, with since when.
    pub fn awaiting_keyframe(&self) -> Option<(Option<Rid>, Instant)> {
        self.video
            .awaiting_keyframe()
            .or_else(|| Some((self.video.current().copied(), self.recovering?)))
    }

    /// A keyframe request for the awaited layer went out.
    pub fn keyframe_requested(&mut self, now: Instant) {
        self.video.keyframe_requested(now);
        if self.recovering.is_some() {
            self.recovering = Some(now);
        }
    }

    /// The layer the tap is getting, or switching to.
    pub fn layer(&self) -> Option<Rid> {
        self.video.current().or(self.video.target()).copied()
    }

    /// Offer one publisher packet; `top` is the room's highest declared layer.
    pub fn forward(&mut self, p: &MediaPacket, top: Option<Rid>, now: Instant) -> TapOutcome {
        let forwarder = match p.kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        };
        let Forwarded::Send { seq, rtp_time, .. } = forwarder.forward(p, now) else {
            return TapOutcome::Skipped;
        };
        let video = p.kind == MediaKind::Video;
        if video && self.recovering.is_some() {
            if !p.keyframe {
                self.dropped += 1;
                return TapOutcome::Dropped {
                    wants_keyframe: false,
                };
            }
            self.recovering = None;
        }
        let packet = TapPacket {
            kind: p.kind,
            params: p.params,
            seq,
            rtp_time,
            marker: p.marker,
            keyframe: p.keyframe,
            rid: p.rid,
            epoch: p.epoch,
            received: p.received,
            capture: p.capture,
            top_layer: p.kind == MediaKind::Audio || top.is_none() || p.rid == top,
            payload: p.payload.clone(),
        };
        if self.queue.offer(packet) {
            return TapOutcome::Queued;
        }
        self.dropped += 1;
        if video {
            self.recovering = Some(now);
        }
        TapOutcome::Dropped {
            wants_keyframe: video,
        }
    }
}
