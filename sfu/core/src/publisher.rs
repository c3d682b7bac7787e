//! The publisher side of a session: turns incoming RTP into shared [`MediaPacket`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use str0m::Rtc;
use str0m::format::PayloadParams;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::rtcp::SenderInfo;
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
    /// Its first video packet was reported to the control plane (`SfuEvent::PublisherVideo`).
    pub video_announced: bool,
}

impl Publisher {
    /// A publisher that is the room's `epoch`-th.
    pub fn new(epoch: u32) -> Self {
        Publisher {
            epoch,
            streams: HashMap::new(),
            params: Vec::new(),
            video_mid: None,
            video_announced: false,
        }
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
        arrived: Instant,
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
        let capture = p
            .last_sender_info
            .and_then(|sr| capture_time(&sr, p.header.timestamp, params.spec().clock_rate.get()));
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
            received: arrived,
            capture,
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

/// The sender's wall-clock time of RTP timestamp `rtp`, from a sender report that ties the
/// stream's RTP clock to its NTP clock. Timestamps within half the 32-bit range of the
/// report's count as before or after it.
fn capture_time(sr: &SenderInfo, rtp: u32, clock_rate: u32) -> Option<SystemTime> {
    if clock_rate == 0 {
        return None;
    }
    // The report's RTP time as it went on the wire (the low 32 bits).
    let at_report = sr.rtp_time.numer() as u32;
    let ticks = i64::from(rtp.wrapping_sub(at_report) as i32);
    let offset = Duration::from_nanos(ticks.unsigned_abs() * 1_000_000_000 / u64::from(clock_rate));
    if ticks >= 0 {
        sr.ntp_time.checked_add(offset)
    } else {
        sr.ntp_time.checked_sub(offset)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use str0m::media::{Frequency, MediaTime};
    use str0m::rtp::rtcp::SenderInfo;

    use super::capture_time;

    fn report(ntp: SystemTime, rtp: u64) -> SenderInfo {
        SenderInfo {
            ssrc: 1.into(),
            ntp_time: ntp,
            rtp_time: MediaTime::new(rtp, Frequency::NINETY_KHZ),
            sender_packet_count: 0,
            sender_octet_count: 0,
        }
    }

    #[test]
    fn capture_times_follow_the_sender_report_both_ways_and_across_the_wrap() {
        let ntp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sr = report(ntp, 90_000);
        assert_eq!(
            capture_time(&sr, 180_000, 90_000),
            Some(ntp + Duration::from_secs(1))
        );
        assert_eq!(
            capture_time(&sr, 45_000, 90_000),
            Some(ntp - Duration::from_millis(500))
        );
        // The report sits just before the 32-bit wrap, the packet just after it.
        let sr = report(ntp, u64::from(u32::MAX) - 8_999);
        assert_eq!(
            capture_time(&sr, 81_000, 90_000),
            Some(ntp + Duration::from_secs(1))
        );
        assert_eq!(capture_time(&sr, 1, 0), None);
    }
}
