//! A publisher's RTP packet as it crosses from the publisher to its subscribers.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Rid};
use str0m::rtp::{ExtensionValues, Vp8Descriptor};

use crate::codec::CodecKind;
use crate::ids::RoomId;

/// One RTP packet from a publisher, parsed once and shared (`Arc`) by every subscriber on
/// every worker. Nothing in it is per-subscriber.
#[derive(Debug)]
pub struct MediaPacket {
    /// The room it belongs to.
    pub room: RoomId,
    /// Audio or video.
    pub kind: MediaKind,
    /// The simulcast layer, `None` for a single-layer track.
    pub rid: Option<Rid>,
    /// Increments each time the room gets a new publisher session, so forwarders know the
    /// sequence and timestamp spaces changed.
    pub epoch: u32,
    /// The publisher's codec for this packet (payload type in the publisher's numbering).
    pub params: PayloadParams,
    /// What the forwarder needs to know about the codec.
    pub codec: CodecKind,
    /// Extended (rollover-free) sequence number in the publisher's stream.
    pub seq: u64,
    /// RTP timestamp as sent by the publisher.
    pub rtp_time: u32,
    /// Marker bit (end of a video frame).
    pub marker: bool,
    /// Starts a keyframe: a forwarder may switch to this layer here.
    pub keyframe: bool,
    /// Header extension values worth forwarding (audio level, orientation...).
    pub ext: ExtensionValues,
    /// VP8 picture id and TL0PICIDX as sent, for continuity rewriting.
    pub vp8: Option<Vp8Ids>,
    /// When the packet arrived at the server (for forwarding-delay metrics).
    pub received: Instant,
    /// When the publisher captured it on its wall clock, from the stream's latest RTCP sender
    /// report (`None` until one arrives). LL-HLS uses it for PROGRAM-DATE-TIME.
    pub capture: Option<SystemTime>,
    /// RTP payload.
    pub payload: Arc<[u8]>,
}

/// The VP8 picture-level counters a forwarder rewrites.
#[derive(Debug, Clone, Copy)]
pub struct Vp8Ids {
    /// 7- or 15-bit picture id.
    pub picture_id: u16,
    /// Whether the picture id is 15 bits wide.
    pub wide: bool,
    /// TL0PICIDX when present.
    pub tl0: Option<u8>,
    /// The parsed descriptor, kept so each viewer's rewrite patches it without parsing again.
    pub descriptor: Vp8Descriptor,
}

impl Vp8Ids {
    /// Read the counters from a VP8 payload; `None` when it carries no picture id.
    pub fn parse(payload: &[u8]) -> Option<Vp8Ids> {
        let d = Vp8Descriptor::parse(payload).ok()?;
        let picture_id = d.picture_id()?;
        // The descriptor does not say the width; a wide id has the M bit set in its first byte.
        let wide = payload.get(2).is_some_and(|b| b & 0x80 != 0);
        Some(Vp8Ids {
            picture_id,
            wide,
            tl0: d.tl0_pic_idx(),
            descriptor: d,
        })
    }
}
