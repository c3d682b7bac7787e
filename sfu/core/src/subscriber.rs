//! The subscriber side of a session: forwarders, layer allocation, writing RTP out.

use std::time::Instant;

use str0m::Rtc;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::RtpWrite;

use crate::allocator::{Allocator, AllocatorConfig, LayerChoice};
use crate::forwarder::{Forwarded, Forwarder, Late};
use crate::packet::MediaPacket;

/// One outgoing track of a subscriber.
#[derive(Debug)]
struct TrackOut {
    mid: Mid,
    forwarder: Forwarder,
    /// Publisher payload type -> ours, cached.
    pt_map: Vec<(PayloadParams, Pt)>,
}

/// Subscriber state beside its `Rtc`.
#[derive(Debug)]
pub struct Subscriber {
    audio: Option<TrackOut>,
    video: Option<TrackOut>,
    allocator: Allocator,
    /// Latest bandwidth estimate, bit/s.
    pub estimate_bps: u64,
    /// Packets written since creation.
    pub packets_out: u64,
}

impl Subscriber {
    /// A subscriber with the given starting bandwidth estimate.
    pub fn new(initial_bps: u64) -> Self {
        Subscriber {
            audio: None,
            video: None,
            allocator: Allocator::new(AllocatorConfig::default()),
            estimate_bps: initial_bps,
            packets_out: 0,
        }
    }

    /// Note a media section of the viewer's offer: the first of each kind carries the room's track.
    pub fn media_added(&mut self, mid: Mid, kind: MediaKind) {
        let slot = match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        };
        if slot.is_none() {
            *slot = Some(TrackOut {
                mid,
                forwarder: Forwarder::new(kind),
                pt_map: Vec::new(),
            });
        }
    }

    /// Pin a layer or return to automatic choice.
    pub fn set_choice(&mut self, choice: LayerChoice) {
        self.allocator.set_choice(choice);
    }

    /// The allocator's mode.
    pub fn choice(&self) -> &LayerChoice {
        self.allocator.choice()
    }

    /// The video layer being sent and the one being switched to.
    pub fn layers(&self) -> (Option<Rid>, Option<Rid>) {
        match &self.video {
            Some(v) => (v.forwarder.current().copied(), v.forwarder.target().copied()),
            None => (None, None),
        }
    }

    /// Re-decide the video layer. Returns the bitrate the estimator should probe for.
    pub fn allocate(&mut self, now: Instant, layers: &[(Rid, u64)]) -> u64 {
        let target = self.allocator.update(now, self.estimate_bps, layers);
        if let Some(v) = &mut self.video {
            v.forwarder.set_target(target, now);
        }
        self.allocator.desired_bps(layers)
    }

    /// Run the allocator before the session has its tracks: the layer it will start on.
    pub fn planned_layer(&mut self, now: Instant, layers: &[(Rid, u64)]) -> Option<Rid> {
        self.allocator.update(now, self.estimate_bps, layers)
    }

    /// Whether any video has been sent to this viewer.
    pub fn video_started(&self) -> bool {
        self.video.as_ref().is_some_and(|v| v.forwarder.started())
    }

    /// The video layer a keyframe is awaited on, with when the wait (re)started.
    pub fn awaiting_keyframe(&self) -> Option<(Option<Rid>, Instant)> {
        self.video.as_ref()?.forwarder.awaiting_keyframe()
    }

    /// A keyframe request for the awaited layer went out.
    pub fn keyframe_requested(&mut self, now: Instant) {
        if let Some(v) = &mut self.video {
            v.forwarder.keyframe_requested(now);
        }
    }

    /// The layer a keyframe request from the viewer should go to.
    pub fn keyframe_target(&self) -> Option<Rid> {
        let v = self.video.as_ref()?;
        v.forwarder.current().or(v.forwarder.target()).copied()
    }

    /// What to do with `p`, which came too late (see [`Forwarder::late`]).
    pub fn late(&mut self, p: &MediaPacket, now: Instant) -> Late {
        let track = match p.kind {
            MediaKind::Audio => self.audio.as_mut(),
            MediaKind::Video => self.video.as_mut(),
        };
        track.map_or(Late::Skip, |t| t.forwarder.late(p, now))
    }

    /// The layer a viewer whose video restarted waits for.
    pub fn restart_layer(&self) -> Option<Rid> {
        self.video.as_ref()?.forwarder.target().copied()
    }

    /// Forward one packet. Returns whether anything was written.
    pub fn forward(&mut self, rtc: &mut Rtc, p: &MediaPacket, now: Instant) -> bool {
        let track = match p.kind {
            MediaKind::Audio => self.audio.as_mut(),
            MediaKind::Video => self.video.as_mut(),
        };
        let Some(track) = track else { return false };
        let Forwarded::Send { seq, rtp_time, vp8 } = track.forwarder.forward(p, now) else {
            return false;
        };

        let pt = match track.pt_map.iter().find(|(params, _)| *params == p.params) {
            Some((_, pt)) => *pt,
            None => {
                let config = rtc.codec_config();
                let remote = rtc.media(track.mid).map(|m| m.remote_pts()).unwrap_or_default();
                let negotiated: Vec<PayloadParams> = remote
                    .iter()
                    .filter_map(|pt| config.params().iter().find(|c| c.pt() == *pt))
                    .copied()
                    .collect();
                match viewer_pt(config.match_params(p.params), &negotiated, &p.params) {
                    Some(pt) => {
                        track.pt_map.push((p.params, pt));
                        pt
                    }
                    None => return false,
                }
            }
        };

        let mut write = RtpWrite::new(pt, seq.into(), rtp_time, p.received, p.payload.clone())
            .marker(p.marker)
            .ext_vals(p.ext.clone())
            .nackable(p.kind == MediaKind::Video);
        if let Some((pic, tl0)) = vp8
            && let Some(ids) = &p.vp8
        {
            let mut b = ids.descriptor.patch().picture_id(pic);
            if let Some(t) = tl0 {
                b = b.tl0_pic_idx(t);
            }
            if let Ok(patch) = b.build() {
                write = write.vp8_patch(patch);
            }
        }
        let mut api = rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(track.mid, None) else {
            return false;
        };
        tx.write_rtp(write);
        self.packets_out += 1;
        true
    }
}

/// The payload type a publisher's `params` go out as to a viewer: `best`, str0m's closest match
/// in the session's codec config, when the viewer negotiated it (`negotiated`: the viewer's
/// payload types, in its order). The config also keeps what the viewer's offer lacked, under
/// numbers the viewer may use for another codec: a packet sent under one is undecodable.
///
/// An H.264 profile the viewer did not offer goes out as the viewer's first H.264 of the same
/// packetization mode: browsers' H.264 decoders take Baseline, Main and High alike, whatever
/// profile-level-id was negotiated, and some browsers offer no High (Debian's Chromium,
/// Firefox) while RTMP encoders send it by default.
fn viewer_pt(
    best: Option<&PayloadParams>,
    negotiated: &[PayloadParams],
    params: &PayloadParams,
) -> Option<Pt> {
    if let Some(best) = best
        && negotiated.iter().any(|n| n.pt() == best.pt())
    {
        return Some(best.pt());
    }
    let spec = params.spec();
    if spec.codec != Codec::H264 {
        return None;
    }
    let mode = spec.format.packetization_mode.unwrap_or(0);
    negotiated
        .iter()
        .find(|n| {
            let s = n.spec();
            s.codec == Codec::H264
                && s.clock_rate == spec.clock_rate
                && s.format.packetization_mode.unwrap_or(0) == mode
        })
        .map(|n| n.pt())
}

#[cfg(test)]
mod tests {
    use str0m::format::{CodecSpec, FormatParams};
    use str0m::media::Frequency;

    use super::*;

    fn h264(pt: u8, mode: u8, profile_level_id: u32) -> PayloadParams {
        let spec = CodecSpec {
            codec: Codec::H264,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: FormatParams {
                level_asymmetry_allowed: Some(true),
                packetization_mode: Some(mode),
                profile_level_id: Some(profile_level_id),
                ..Default::default()
            },
        };
        PayloadParams::new(pt.into(), None, spec)
    }

    fn vp8(pt: u8) -> PayloadParams {
        let spec = CodecSpec {
            codec: Codec::Vp8,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: FormatParams::default(),
        };
        PayloadParams::new(pt.into(), None, spec)
    }

    #[test]
    fn a_negotiated_match_is_used() {
        let negotiated = [h264(102, 1, 0x42_00_1f), h264(116, 1, 0x4d_00_1f)];
        let source = h264(100, 1, 0x4d_00_1f);
        assert_eq!(
            viewer_pt(Some(&negotiated[1]), &negotiated, &source),
            Some(116.into())
        );
    }

    #[test]
    fn a_match_the_viewer_did_not_negotiate_is_not_used() {
        // What Debian's Chromium offers: no High. str0m's own High entry was renumbered onto
        // a number the viewer's offer gave VP8.
        let negotiated = [
            h264(104, 0, 0x42_00_1f),
            h264(102, 1, 0x42_00_1f),
            h264(108, 1, 0x42_e0_1f),
        ];
        let unnegotiated_high = h264(96, 1, 0x64_00_1f);
        let source = h264(102, 1, 0x64_00_1f);
        assert_eq!(
            viewer_pt(Some(&unnegotiated_high), &negotiated, &source),
            Some(102.into()),
            "the viewer's first H.264 of the source's packetization mode"
        );
        let vp8_source = vp8(96);
        assert_eq!(viewer_pt(Some(&vp8(96)), &negotiated, &vp8_source), None);
        assert_eq!(
            viewer_pt(None, &[h264(104, 0, 0x42_00_1f)], &source),
            None,
            "mode 0 only"
        );
    }
}
