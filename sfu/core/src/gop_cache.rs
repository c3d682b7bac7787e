//! The packets of each video layer since its latest keyframe, so a viewer that has just
//! connected starts decoding at once instead of waiting for a keyframe it asks for.
//!
//! A joining viewer's keyframe request goes out when its session is created (the WHEP POST),
//! about one ICE + DTLS handshake before it can receive anything. By the time it connects,
//! the keyframe has arrived and sits here with the frames that followed it; the worker
//! replays them through the viewer's forwarder, which then continues with live packets
//! without a gap. Only young keyframes are replayed, so the burst stays small.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Rid};

use crate::packet::MediaPacket;

/// How much one layer may hold before it is dropped until the next keyframe.
const MAX_PACKETS: usize = 1024;
/// A layer whose keyframe is older than this stops growing and is dropped.
const MAX_AGE: Duration = Duration::from_millis(1500);

#[derive(Debug)]
struct Gop {
    rid: Option<Rid>,
    epoch: u32,
    keyframe_at: Instant,
    packets: Vec<Arc<MediaPacket>>,
}

/// Per room view: one group of pictures per video layer.
#[derive(Debug, Default)]
pub struct GopCache {
    gops: Vec<Gop>,
}

impl GopCache {
    /// Note a video packet as it is delivered.
    pub fn record(&mut self, p: &Arc<MediaPacket>, now: Instant) {
        if p.kind != MediaKind::Video {
            return;
        }
        let i = self.gops.iter().position(|g| g.rid == p.rid);
        if p.keyframe {
            let fresh = Gop {
                rid: p.rid,
                epoch: p.epoch,
                keyframe_at: now,
                packets: vec![p.clone()],
            };
            match i {
                // Later packets of the same keyframe carry the flag too; keep appending, within
                // the same bounds as any packet (a publisher sending "keyframe" packets of one
                // timestamp without end must not grow the cache without end).
                Some(i) if self.gops[i].epoch == p.epoch && is_same_frame(&self.gops[i], p) => {
                    self.append(i, p, now);
                }
                Some(i) => self.gops[i] = fresh,
                None => self.gops.push(fresh),
            }
            return;
        }
        let Some(i) = i else { return };
        if self.gops[i].epoch != p.epoch {
            self.gops.swap_remove(i);
            return;
        }
        self.append(i, p, now);
    }

    /// Adds `p` to group `i`, or drops the group (until the next keyframe) when it is full or
    /// its keyframe too old.
    fn append(&mut self, i: usize, p: &Arc<MediaPacket>, now: Instant) {
        let g = &mut self.gops[i];
        if g.packets.len() >= MAX_PACKETS || now.saturating_duration_since(g.keyframe_at) > MAX_AGE {
            self.gops.swap_remove(i);
            return;
        }
        g.packets.push(p.clone());
    }

    /// The packets since layer `rid`'s keyframe when it arrived no longer than `max_age` ago.
    pub fn replay(&self, rid: Option<Rid>, now: Instant, max_age: Duration) -> Option<&[Arc<MediaPacket>]> {
        let g = self.gops.iter().find(|g| g.rid == rid)?;
        (now.saturating_duration_since(g.keyframe_at) <= max_age).then_some(g.packets.as_slice())
    }

    /// Forget everything (the publisher changed).
    pub fn clear(&mut self) {
        self.gops.clear();
    }
}

fn is_same_frame(g: &Gop, p: &MediaPacket) -> bool {
    g.packets.last().is_some_and(|last| last.rtp_time == p.rtp_time)
}

#[cfg(test)]
pub(crate) mod tests {
    use str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
    use str0m::media::{Frequency, Pt};
    use str0m::rtp::ExtensionValues;

    use super::*;
    use crate::codec::CodecKind;
    use crate::ids::RoomId;

    /// A VP8 video packet of layer `rid` (4 payload bytes).
    pub(crate) fn packet(
        rid: &str,
        seq: u64,
        rtp_time: u32,
        keyframe: bool,
        epoch: u32,
        at: Instant,
    ) -> Arc<MediaPacket> {
        Arc::new(MediaPacket {
            room: RoomId::new("r"),
            kind: MediaKind::Video,
            rid: Some(Rid::from(rid)),
            epoch,
            params: PayloadParams::new(
                Pt::new_with_value(96),
                None,
                CodecSpec {
                    codec: Codec::Vp8,
                    clock_rate: Frequency::NINETY_KHZ,
                    channels: None,
                    format: FormatParams::default(),
                },
            ),
            codec: CodecKind::Vp8,
            seq,
            rtp_time,
            marker: false,
            keyframe,
            ext: ExtensionValues::default(),
            vp8: None,
            received: at,
            capture: None,
            payload: Arc::from(&[0u8; 4][..]),
        })
    }

    #[test]
    fn holds_the_layer_from_its_latest_keyframe() {
        let t0 = Instant::now();
        let mut c = GopCache::default();
        // Delta frames before any keyframe are not worth keeping.
        c.record(&packet("f", 1, 0, false, 1, t0), t0);
        assert!(c.replay(Some(Rid::from("f")), t0, MAX_AGE).is_none());
        c.record(&packet("f", 2, 3000, true, 1, t0), t0);
        c.record(&packet("f", 3, 3000, true, 1, t0), t0);
        c.record(&packet("f", 4, 6000, false, 1, t0), t0);
        c.record(&packet("q", 9, 6000, false, 1, t0), t0);
        let seqs: Vec<u64> = c
            .replay(Some(Rid::from("f")), t0, MAX_AGE)
            .expect("cached")
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(seqs, [2, 3, 4]);
        // A new keyframe starts over.
        c.record(&packet("f", 5, 9000, true, 1, t0), t0);
        assert_eq!(
            c.replay(Some(Rid::from("f")), t0, MAX_AGE).map(<[_]>::len),
            Some(1)
        );
    }

    #[test]
    fn old_or_foreign_groups_are_not_replayed() {
        let t0 = Instant::now();
        let mut c = GopCache::default();
        c.record(&packet("f", 1, 0, true, 1, t0), t0);
        let later = t0 + Duration::from_millis(600);
        assert!(
            c.replay(Some(Rid::from("f")), later, Duration::from_millis(500))
                .is_none()
        );
        // A packet of a new publisher session drops the old group.
        c.record(&packet("f", 2, 3000, false, 2, later), later);
        assert!(c.replay(Some(Rid::from("f")), later, MAX_AGE).is_none());
        // Too old to keep growing.
        c.record(&packet("f", 3, 0, true, 2, t0), t0);
        c.record(
            &packet("f", 4, 3000, false, 2, t0 + MAX_AGE * 2),
            t0 + MAX_AGE * 2,
        );
        assert!(c.replay(Some(Rid::from("f")), t0, MAX_AGE).is_none());
    }

    #[test]
    fn keyframe_packets_of_one_timestamp_stay_within_the_bounds() {
        let t0 = Instant::now();
        let mut c = GopCache::default();
        let f = Some(Rid::from("f"));
        for seq in 0..(MAX_PACKETS as u64 * 3) {
            c.record(&packet("f", seq, 3000, true, 1, t0), t0);
            let held = c.replay(f, t0, MAX_AGE).map_or(0, <[_]>::len);
            assert!(held <= MAX_PACKETS, "{held} packets held after {seq}");
        }
        // Nor for longer than the age bound.
        let mut c = GopCache::default();
        c.record(&packet("f", 1, 3000, true, 1, t0), t0);
        let late = t0 + MAX_AGE * 2;
        c.record(&packet("f", 2, 3000, true, 1, late), late);
        assert!(
            c.replay(f, t0, MAX_AGE * 4).is_none(),
            "a keyframe older than the age bound stops growing and is dropped"
        );
    }
}
