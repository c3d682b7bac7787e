//! The publisher side of a session: turns incoming RTP into shared [`MediaPacket`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use str0m::Rtc;
use str0m::format::PayloadParams;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, Ssrc};

use crate::codec::{CodecKind, is_keyframe};
use crate::ids::RoomId;
use crate::packet::{MediaPacket, Vp8Ids};

/// What the publisher knows about one incoming SSRC.
#[derive(Debug, Clone)]
struct InStream {
    kind: MediaKind,
    rid: Option<Rid>,
}

/// Publisher state beside its `Rtc`.
#[derive(Debug)]
pub struct Publisher {
    epoch: u32,
    streams: HashMap<Ssrc, InStream>,
    params: Vec<PayloadParams>,
    video_mid: Option<Mid>,
}

impl Publisher {
    /// A publisher that is the room's `epoch`-th.
    pub fn new(epoch: u32) -> Self {
        Publisher {
            epoch,
            streams: HashMap::new(),
            params: Vec::new(),
            video_mid: None,
        }
    }

    /// The video codec the publisher negotiated, once known.
    pub fn video_params(&self, rtc: &Rtc) -> Option<PayloadParams> {
        let mid = self.video_mid?;
        let media = rtc.media(mid)?;
        let pt = *media.remote_pts().first()?;
        rtc.codec_config().find(|p| p.pt() == pt).copied()
    }

    /// Note a media section the offer added.
    pub fn media_added(&mut self, mid: Mid, kind: MediaKind) {
        if kind == MediaKind::Video && self.video_mid.is_none() {
            self.video_mid = Some(mid);
        }
    }

    /// Turn an incoming RTP packet into a shareable media packet. `None` for packets of
    /// media we do not forward (a second video track, unknown payload types).
    pub fn packet(
        &mut self,
        rtc: &mut Rtc,
        room: &RoomId,
        p: RtpPacket,
        now: Instant,
    ) -> Option<Arc<MediaPacket>> {
        let ssrc = p.header.ssrc;
        let stream = match self.streams.get(&ssrc) {
            Some(s) => s.clone(),
            None => {
                let (mid, rid) = {
                    let mut api = rtc.direct_api();
                    let rx = api.stream_rx(&ssrc)?;
                    (rx.mid(), rx.rid())
                };
                let kind = rtc.media(mid)?.kind();
                if kind == MediaKind::Video && self.video_mid.is_some_and(|v| v != mid) {
                    return None;
                }
                if kind == MediaKind::Video {
                    self.video_mid = Some(mid);
                }
                let s = InStream { kind, rid };
                self.streams.insert(ssrc, s.clone());
                s
            }
        };

        let pt = p.header.payload_type;
        let params = match self.params.iter().find(|x| x.pt() == pt) {
            Some(x) => *x,
            None => {
                let x = *rtc.codec_config().find(|x| x.pt() == pt)?;
                self.params.push(x);
                x
            }
        };
        let codec = CodecKind::from_codec(params.spec().codec);
        let keyframe = is_keyframe(codec, &p.payload);
        let vp8 = if codec == CodecKind::Vp8 {
            Vp8Ids::parse(&p.payload)
        } else {
            None
        };
        let src = &p.header.ext_vals;
        let ext = ExtensionValues {
            audio_level: src.audio_level,
            voice_activity: src.voice_activity,
            video_orientation: src.video_orientation,
            ..Default::default()
        };

        Some(Arc::new(MediaPacket {
            room: room.clone(),
            kind: stream.kind,
            rid: stream.rid,
            epoch: self.epoch,
            params,
            codec,
            seq: *p.seq_no,
            rtp_time: p.header.timestamp,
            marker: p.header.marker,
            keyframe,
            ext,
            vp8,
            received: now,
            payload: p.payload,
        }))
    }

    /// Ask the encoder for a keyframe on one layer.
    pub fn request_keyframe(&self, rtc: &mut Rtc, rid: Option<Rid>) {
        let Some(mid) = self.video_mid else { return };
        let mut api = rtc.direct_api();
        if let Some(rx) = api.stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
    }
}
