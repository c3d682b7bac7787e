//! Per-subscriber, per-track RTP rewriting.
//!
//! A forwarder turns packets from several source streams (simulcast layers, and successive
//! publisher sessions of the same room) into one continuous outgoing stream: one SSRC,
//! sequence numbers without jumps, timestamps that keep advancing with the wall clock, and
//! VP8 picture ids that keep counting. It switches source only at the start of a keyframe
//! of the new source, so the decoder never sees a delta frame it has no reference for.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Rid};

use crate::packet::MediaPacket;

/// What to do with one packet for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Not for this subscriber (another layer, or older than the switch point).
    Drop,
    /// Send it with these rewritten values.
    Send {
        /// Outgoing extended sequence number.
        seq: u64,
        /// Outgoing RTP timestamp.
        rtp_time: u32,
        /// Outgoing VP8 picture id and TL0PICIDX, when the packet carries them.
        vp8: Option<(u16, Option<u8>)>,
    },
}

/// What to do with a packet that came too late (see [`Forwarder::late`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// Send it anyway: it finishes a frame already begun.
    Send,
    /// Skip it.
    Skip,
    /// Skip it; the viewer's video stopped and waits for a keyframe.
    Restart,
}

/// Identity of a source stream: which publisher session and which layer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    epoch: u32,
    rid: Option<Rid>,
}

/// The mapping from the current source's numbering to the outgoing numbering.
#[derive(Debug, Clone)]
struct Mapping {
    source: Source,
    /// Packets of the source below this sequence number predate the switch and are dropped.
    first_seq: u64,
    seq_offset: u64,
    ts_offset: u32,
    pic_offset: u16,
    tl0_offset: u8,
}

/// Rewrites one track's packets for one subscriber. See the module docs.
#[derive(Debug)]
pub struct Forwarder {
    kind: MediaKind,
    clock_rate: u32,
    /// The layer the subscriber should get; `None` for a single-layer track.
    target: Option<Rid>,
    /// The newest publisher session seen; older ones are finished.
    epoch: u32,
    mapping: Option<Mapping>,
    last_seq: u64,
    last_ts: u32,
    last_pic: u16,
    last_tl0: u8,
    last_sent: Option<Instant>,
    /// The source RTP timestamp of the last packet sent: the frame in progress.
    last_src_ts: Option<u32>,
    /// Since when the forwarder waits for a keyframe of its target, if it does.
    waiting_since: Option<Instant>,
}

impl Forwarder {
    /// A forwarder for a track of this kind. It forwards nothing until it sees a starting
    /// point (any audio packet; a video keyframe of the target layer).
    pub fn new(kind: MediaKind) -> Self {
        Forwarder {
            kind,
            clock_rate: if kind == MediaKind::Audio { 48_000 } else { 90_000 },
            target: None,
            epoch: 0,
            mapping: None,
            last_seq: 0,
            last_ts: 0,
            last_pic: 0,
            last_tl0: 0,
            last_sent: None,
            last_src_ts: None,
            waiting_since: None,
        }
    }

    /// The layer the forwarder is switching to or sending.
    pub fn target(&self) -> Option<&Rid> {
        self.target.as_ref()
    }

    /// The layer actually being sent, if any.
    pub fn current(&self) -> Option<&Rid> {
        self.mapping.as_ref().and_then(|m| m.source.rid.as_ref())
    }

    /// Whether anything has been sent yet.
    pub fn started(&self) -> bool {
        self.last_sent.is_some()
    }

    /// Ask for another layer. Takes effect at that layer's next keyframe; until then the
    /// current layer keeps flowing.
    pub fn set_target(&mut self, rid: Option<Rid>, now: Instant) {
        if self.target != rid {
            self.target = rid;
            if !self.on_target() {
                self.waiting_since = Some(now);
            }
        }
    }

    /// The layer this forwarder waits for a keyframe on, with the time it started waiting.
    pub fn awaiting_keyframe(&self) -> Option<(Option<Rid>, Instant)> {
        self.waiting_since.map(|t| (self.target, t))
    }

    /// What to do with `p`, which came too late to be worth sending. Audio skips it. Video
    /// finishes a frame it has begun (whole frames or nothing) and skips what is not its
    /// layer; otherwise it stops and waits for the target layer's next keyframe (a frame with
    /// a packet missing would only corrupt the picture). The skipped packets are gone for
    /// this viewer: the numbering continues without a hole, so nobody asks for them again.
    pub fn late(&mut self, p: &MediaPacket, now: Instant) -> Late {
        let sending_it = self
            .mapping
            .as_ref()
            .is_some_and(|m| m.source.epoch == p.epoch && m.source.rid == p.rid);
        if self.kind == MediaKind::Audio || !sending_it {
            return Late::Skip;
        }
        if self.last_src_ts == Some(p.rtp_time) {
            return Late::Send;
        }
        self.mapping = None;
        self.waiting_since = Some(now);
        Late::Restart
    }

    /// Restart the wait clock after a keyframe request went out.
    pub fn keyframe_requested(&mut self, now: Instant) {
        if self.waiting_since.is_some() {
            self.waiting_since = Some(now);
        }
    }

    fn on_target(&self) -> bool {
        self.mapping.as_ref().is_some_and(|m| {
            m.source.epoch == self.epoch && (self.kind == MediaKind::Audio || m.source.rid == self.target)
        })
    }

    /// Decide what to do with one packet of this track.
    pub fn forward(&mut self, p: &MediaPacket, now: Instant) -> Forwarded {
        if p.epoch > self.epoch || self.mapping.is_none() && self.waiting_since.is_none() {
            self.epoch = self.epoch.max(p.epoch);
            if !self.on_target() {
                self.waiting_since.get_or_insert(now);
            }
        }
        if p.epoch < self.epoch {
            return Forwarded::Drop;
        }

        let source = Source {
            epoch: p.epoch,
            rid: if self.kind == MediaKind::Audio {
                None
            } else {
                p.rid
            },
        };
        let is_current = self.mapping.as_ref().is_some_and(|m| m.source == source);
        if !is_current {
            let wanted = p.epoch == self.epoch && (self.kind == MediaKind::Audio || p.rid == self.target);
            if !(wanted && p.keyframe) {
                return Forwarded::Drop;
            }
            self.switch_to(source, p, now);
        }

        let m = self
            .mapping
            .as_ref()
            .expect("a mapping exists after the switch above");
        if p.seq < m.first_seq {
            return Forwarded::Drop;
        }
        let seq = p.seq.wrapping_add(m.seq_offset);
        let rtp_time = p.rtp_time.wrapping_add(m.ts_offset);
        let vp8 = p.vp8.map(|ids| {
            let mask = if ids.wide { 0x7fff } else { 0x7f };
            let pic = ids.picture_id.wrapping_add(m.pic_offset) & mask;
            let tl0 = ids.tl0.map(|t| t.wrapping_add(m.tl0_offset));
            (pic, tl0)
        });

        if seq > self.last_seq || self.last_sent.is_none() {
            self.last_seq = seq;
            self.last_ts = rtp_time;
            if let Some((pic, tl0)) = vp8 {
                self.last_pic = pic;
                if let Some(t) = tl0 {
                    self.last_tl0 = t;
                }
            }
        }
        self.last_sent = Some(now);
        self.last_src_ts = Some(p.rtp_time);
        Forwarded::Send { seq, rtp_time, vp8 }
    }

    fn switch_to(&mut self, source: Source, p: &MediaPacket, now: Instant) {
        let mapping = match self.last_sent {
            // The very first source keeps its own 16-bit numbering, from rollover count 0: the
            // publisher's extended number has counted every wrap since it went live, and a
            // viewer's SRTP starts at rollover 0 (a first packet with rollover 1 never
            // decrypts in the browser).
            None => Mapping {
                source,
                first_seq: p.seq,
                seq_offset: (p.seq & 0xffff).wrapping_sub(p.seq),
                ts_offset: 0,
                pic_offset: 0,
                tl0_offset: 0,
            },
            Some(last) => {
                let elapsed = now.saturating_duration_since(last).max(Duration::from_millis(1));
                let ticks =
                    (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000).max(1) as u32;
                let (pic_offset, tl0_offset) = match p.vp8 {
                    Some(ids) => (
                        self.last_pic.wrapping_add(1).wrapping_sub(ids.picture_id),
                        ids.tl0
                            .map(|t| self.last_tl0.wrapping_add(1).wrapping_sub(t))
                            .unwrap_or(0),
                    ),
                    None => (0, 0),
                };
                Mapping {
                    source,
                    first_seq: p.seq,
                    seq_offset: self.last_seq.wrapping_add(1).wrapping_sub(p.seq),
                    ts_offset: self.last_ts.wrapping_add(ticks).wrapping_sub(p.rtp_time),
                    pic_offset,
                    tl0_offset,
                }
            }
        };
        self.mapping = Some(mapping);
        self.waiting_since = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use str0m::format::{Codec, CodecSpec, FormatParams, PayloadParams};
    use str0m::media::{Frequency, Pt};
    use str0m::rtp::ExtensionValues;

    use super::*;
    use crate::codec::CodecKind;
    use crate::ids::RoomId;
    use crate::packet::Vp8Ids;

    fn params() -> PayloadParams {
        PayloadParams::new(
            Pt::new_with_value(96),
            None,
            CodecSpec {
                codec: Codec::Vp8,
                clock_rate: Frequency::NINETY_KHZ,
                channels: None,
                format: FormatParams::default(),
            },
        )
    }

    /// A VP8 payload with a 15-bit picture id: X=1 S=1, I=1, then a payload header byte.
    fn vp8_payload(pic: u16) -> Vec<u8> {
        vec![0x90, 0x80, 0x80 | (pic >> 8) as u8, pic as u8, 0x10]
    }

    fn pkt(rid: &str, epoch: u32, seq: u64, ts: u32, key: bool, pic: u16, at: Instant) -> MediaPacket {
        MediaPacket {
            room: RoomId::new("r"),
            kind: MediaKind::Video,
            rid: Some(rid.into()),
            epoch,
            params: params(),
            codec: CodecKind::Vp8,
            seq,
            rtp_time: ts,
            marker: true,
            keyframe: key,
            ext: ExtensionValues::default(),
            vp8: Vp8Ids::parse(&vp8_payload(pic)),
            received: at,
            capture: None,
            payload: Arc::from(vp8_payload(pic)),
        }
    }

    fn sent(f: Forwarded) -> (u64, u32, u16) {
        match f {
            Forwarded::Send { seq, rtp_time, vp8 } => (seq, rtp_time, vp8.map(|v| v.0).unwrap_or(0)),
            Forwarded::Drop => panic!("expected a packet to be sent"),
        }
    }

    #[test]
    fn late_media_finishes_the_frame_begun_then_restarts_at_a_keyframe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(MediaKind::Video);
        f.set_target(Some("h".into()), t0);
        let (first, _, _) = sent(f.forward(&pkt("h", 0, 100, 9000, true, 1, t0), t0));
        let _ = sent(f.forward(&pkt("h", 0, 101, 12000, false, 2, t0), t0));
        // The rest of frame 12000 comes late: it is sent, so the viewer gets the frame whole.
        assert_eq!(f.late(&pkt("h", 0, 102, 12000, false, 2, t0), t0), Late::Send);
        assert_eq!(
            f.late(&pkt("q", 0, 7, 12000, false, 9, t0), t0),
            Late::Skip,
            "not its layer"
        );
        // The next frame is late: the viewer stops and waits for a keyframe.
        assert_eq!(f.late(&pkt("h", 0, 103, 15000, false, 3, t0), t0), Late::Restart);
        assert_eq!(
            f.forward(&pkt("h", 0, 104, 18000, false, 4, t0), t0),
            Forwarded::Drop
        );
        assert!(f.awaiting_keyframe().is_some());
        // It resumes at the keyframe, numbered right after what it sent last.
        let (seq, _, _) = sent(f.forward(&pkt("h", 0, 105, 21000, true, 5, t0), t0));
        assert_eq!(seq, first + 2);
    }

    #[test]
    fn a_viewer_starts_at_rollover_zero_after_the_publisher_wrapped() {
        // The publisher's extended numbers have wrapped twice before this viewer joins: the
        // viewer's first packet must still be at rollover 0, and the next ones follow it,
        // across the publisher's next wrap too.
        let t0 = Instant::now();
        let mut f = Forwarder::new(MediaKind::Video);
        f.set_target(Some("q".into()), t0);
        let base = 2 * 65_536;
        assert_eq!(
            sent(f.forward(&pkt("q", 0, base + 65_534, 1000, true, 5, t0), t0)).0,
            65_534
        );
        assert_eq!(
            sent(f.forward(&pkt("q", 0, base + 65_535, 4000, false, 6, t0), t0)).0,
            65_535
        );
        assert_eq!(
            sent(f.forward(&pkt("q", 0, base + 65_536, 7000, false, 7, t0), t0)).0,
            65_536,
            "the viewer's numbering wraps where the publisher's does"
        );
    }

    #[test]
    fn waits_for_keyframe_then_switches_continuously() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(MediaKind::Video);
        f.set_target(Some("q".into()), t0);

        assert_eq!(
            f.forward(&pkt("q", 0, 100, 1000, false, 5, t0), t0),
            Forwarded::Drop
        );
        assert!(f.awaiting_keyframe().is_some());
        assert_eq!(
            sent(f.forward(&pkt("q", 0, 101, 4000, true, 6, t0), t0)),
            (101, 4000, 6)
        );
        assert!(f.awaiting_keyframe().is_none());
        // Another layer is dropped while q is the target.
        assert_eq!(
            f.forward(&pkt("f", 0, 9000, 77, true, 300, t0), t0),
            Forwarded::Drop
        );
        assert_eq!(
            sent(f.forward(&pkt("q", 0, 102, 7000, false, 7, t0), t0)),
            (102, 7000, 7)
        );

        // Switch up: q keeps flowing until f has a keyframe.
        let t1 = t0 + Duration::from_millis(33);
        f.set_target(Some("f".into()), t1);
        assert_eq!(
            f.forward(&pkt("f", 0, 9001, 80, false, 301, t1), t1),
            Forwarded::Drop
        );
        assert_eq!(
            sent(f.forward(&pkt("q", 0, 103, 10000, false, 8, t1), t1)),
            (103, 10000, 8)
        );
        let t2 = t1 + Duration::from_millis(33);
        let (seq, ts, pic) = sent(f.forward(&pkt("f", 0, 9002, 90, true, 302, t2), t2));
        assert_eq!(seq, 104, "sequence continues without a gap");
        assert_eq!(ts, 10000 + 33 * 90, "timestamp advances by the wall-clock gap");
        assert_eq!(pic, 9, "picture id continues");
        assert_eq!(f.current().map(|r| r.to_string()), Some("f".to_string()));
        // The old layer is now dropped.
        assert_eq!(
            f.forward(&pkt("q", 0, 104, 13000, false, 9, t2), t2),
            Forwarded::Drop
        );
    }

    #[test]
    fn publisher_reconnect_continues_numbering() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(MediaKind::Video);
        f.set_target(Some("h".into()), t0);
        sent(f.forward(&pkt("h", 0, 50, 500, true, 1, t0), t0));
        sent(f.forward(&pkt("h", 0, 51, 800, false, 2, t0), t0));
        // A new publisher session (epoch 1) starts with unrelated numbering.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(
            f.forward(&pkt("h", 1, 7, 123, false, 900, t1), t1),
            Forwarded::Drop
        );
        let (seq, ts, pic) = sent(f.forward(&pkt("h", 1, 8, 456, true, 901, t1), t1));
        assert_eq!((seq, ts, pic), (52, 800 + 2 * 90_000, 3));
        // A late packet of the old session is ignored.
        assert_eq!(
            f.forward(&pkt("h", 0, 52, 900, false, 3, t1), t1),
            Forwarded::Drop
        );
    }

    #[test]
    fn late_packets_of_current_layer_still_forward() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(MediaKind::Video);
        f.set_target(Some("f".into()), t0);
        sent(f.forward(&pkt("f", 0, 10, 0, true, 1, t0), t0));
        sent(f.forward(&pkt("f", 0, 12, 0, false, 1, t0), t0));
        // A repaired packet arrives late: same mapping, no effect on the high-water mark.
        assert_eq!(sent(f.forward(&pkt("f", 0, 11, 0, false, 1, t0), t0)).0, 11);
        assert_eq!(sent(f.forward(&pkt("f", 0, 13, 0, false, 1, t0), t0)).0, 13);
        // Packets from before the switch point are not sent.
        assert_eq!(f.forward(&pkt("f", 0, 9, 0, false, 1, t0), t0), Forwarded::Drop);
    }
}
