//! The RTP side of an ingest source: sequence numbers, timestamps and codec parameters for
//! the packets handed to the room.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sfu::str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
use sfu::str0m::media::{Frequency, MediaKind};
use sfu::{RoomSource, SourcePacket};

/// The source's timeline: one anchor for both tracks, so they stay in step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    /// The source time (90 kHz) of the first frame.
    pub ticks: i64,
    /// When it arrived.
    pub wall: SystemTime,
}

impl Anchor {
    /// The capture time of source time `ticks`, as the server reckons it.
    pub(crate) fn capture(&self, ticks: i64) -> SystemTime {
        let d = ticks - self.ticks;
        if d >= 0 {
            self.wall + Duration::from_micros((d as u64).saturating_mul(100) / 9)
        } else {
            self.wall - Duration::from_micros(d.unsigned_abs().saturating_mul(100) / 9)
        }
    }
}

/// One track's outgoing RTP numbering.
#[derive(Debug)]
pub(crate) struct TrackOut {
    kind: MediaKind,
    params: PayloadParams,
    seq: u64,
    /// Random start, as RTP asks.
    rtp_base: u32,
}

impl TrackOut {
    /// H.264 with this profile-level-id (packetization mode 1).
    pub(crate) fn h264(profile_level_id: u32) -> TrackOut {
        let spec = CodecSpec {
            codec: Codec::H264,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: FormatParams {
                level_asymmetry_allowed: Some(true),
                packetization_mode: Some(1),
                profile_level_id: Some(profile_level_id),
                ..Default::default()
            },
        };
        TrackOut::new(MediaKind::Video, PayloadParams::new(102.into(), None, spec))
    }

    /// Opus, 48 kHz stereo.
    pub(crate) fn opus() -> TrackOut {
        let spec = CodecSpec {
            codec: Codec::Opus,
            clock_rate: Frequency::FORTY_EIGHT_KHZ,
            channels: Some(2),
            format: FormatParams {
                min_p_time: Some(10),
                use_inband_fec: Some(true),
                ..Default::default()
            },
        };
        TrackOut::new(MediaKind::Audio, PayloadParams::new(111.into(), None, spec))
    }

    fn new(kind: MediaKind, params: PayloadParams) -> TrackOut {
        TrackOut {
            kind,
            params,
            seq: u64::from(rand_u16()) + 1,
            rtp_base: rand_u32(),
        }
    }

    /// Another codec profile on the same numbering (a re-encode starting, a new source SPS).
    pub(crate) fn set_h264_profile(&mut self, profile_level_id: u32) {
        let mut spec = self.params.spec();
        // Called for every frame: most are on the profile already.
        if spec.format.profile_level_id == Some(profile_level_id) {
            return;
        }
        spec.format.profile_level_id = Some(profile_level_id);
        self.params = PayloadParams::new(self.params.pt(), None, spec);
    }

    /// Packets for one frame's payloads at RTP time `rtp` (the track's clock, from zero).
    pub(crate) fn packets(
        &mut self,
        rtp: u64,
        capture: Option<SystemTime>,
        payloads: Vec<(bytes::Bytes, bool)>,
    ) -> Vec<SourcePacket> {
        let rtp_time = self.rtp_base.wrapping_add(rtp as u32);
        payloads
            .into_iter()
            .map(|(payload, marker)| {
                self.seq += 1;
                SourcePacket {
                    kind: self.kind,
                    params: self.params,
                    seq: self.seq,
                    rtp_time,
                    marker,
                    capture,
                    payload: Arc::from(&payload[..]),
                }
            })
            .collect()
    }
}

/// Hand packets made now to the room; whether they were taken (a full worker queue loses them).
pub(crate) fn send(source: &RoomSource, packets: Vec<SourcePacket>) -> bool {
    send_at(source, Instant::now(), packets)
}

/// Hand packets to the room as received at `at`: when their frame reached the server, so the
/// SFU's forwarding delay (`fanout_sfu_forward_delay_seconds`) covers the ingest's own time.
pub(crate) fn send_at(source: &RoomSource, at: Instant, packets: Vec<SourcePacket>) -> bool {
    packets.is_empty() || source.send(at, packets).is_ok()
}

fn rand_u32() -> u32 {
    // Not a secret: RTP only wants starting values that differ between sources.
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(16));
    t ^ std::process::id().rotate_left(8)
}

fn rand_u16() -> u16 {
    (rand_u32() >> 7) as u16 & 0x3fff
}
