//! Sequence-gap accounting for one RTP stream (one SSRC).
//!
//! [`SeqTracker`] is fed every packet's sequence number, with the arrival time passed in, and
//! keeps the holes it has seen. A hole that a later packet fills (a NACK retransmission or mere
//! reordering) counts as recovered; a hole still open after a recovery window counts as lost.
//! Jumps larger than [`MAX_JUMP`] are not holes but discontinuities: an SFU that rewrites
//! sequence numbers across a layer switch must never produce one, so they are counted apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A forward jump larger than this many packets is a discontinuity, not a run of losses.
pub const MAX_JUMP: u64 = 3000;

/// At most this many open holes are remembered; older ones are counted as lost for good.
const MAX_OPEN_HOLES: usize = 20_000;

/// Base for extending the first 16-bit sequence number, so that packets that arrive before the
/// first one (reordering at start) still extend to a positive number.
const EXTENDED_BASE: u64 = 1 << 32;

/// Counts received, duplicate, missing and recovered packets of one RTP stream.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    first: Option<u64>,
    highest: Option<u64>,
    received: u64,
    duplicates: u64,
    recovered: u64,
    gaps_opened: u64,
    discontinuities: u64,
    forgotten: u64,
    holes: BTreeMap<u64, Instant>,
}

impl SeqTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a packet carrying the 16-bit RTP sequence number `seq`, received at `now`.
    /// Returns false for a duplicate.
    pub fn push(&mut self, seq: u16, now: Instant) -> bool {
        let extended = self.extend(seq);
        self.push_extended(extended, now)
    }

    /// Extends a 16-bit sequence number against the highest one seen (RFC 3550 A.1).
    pub fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => EXTENDED_BASE + u64::from(seq),
            Some(highest) => {
                // Truncation is the point: the signed 16-bit distance picks the nearest cycle.
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        }
    }

    /// Records a packet whose sequence number is already extended (str0m hands those out).
    /// Returns false for a duplicate.
    pub fn push_extended(&mut self, seq: u64, now: Instant) -> bool {
        let Some(highest) = self.highest else {
            self.first = Some(seq);
            self.highest = Some(seq);
            self.received = 1;
            return true;
        };
        if seq > highest {
            let gap = seq - highest - 1;
            if gap > MAX_JUMP {
                self.discontinuities += 1;
            } else {
                for missing in highest + 1..seq {
                    self.holes.insert(missing, now);
                }
                self.gaps_opened += gap;
                self.forget_excess_holes();
            }
            self.highest = Some(seq);
            self.received += 1;
        } else if self.holes.remove(&seq).is_some() {
            self.recovered += 1;
            self.received += 1;
        } else if self.first.is_some_and(|first| seq < first) && highest - seq <= MAX_JUMP {
            // Reordered ahead of the first packet we saw: new, but not a hole we knew of.
            self.first = Some(seq);
            self.received += 1;
        } else {
            self.duplicates += 1;
            return false;
        }
        true
    }

    fn forget_excess_holes(&mut self) {
        while self.holes.len() > MAX_OPEN_HOLES {
            if self.holes.pop_first().is_some() {
                self.forgotten += 1;
            }
        }
    }

    /// Distinct packets received (retransmissions that filled a hole included).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets that arrived again after they had already been counted.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Holes that a later packet filled.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// Every sequence number ever found missing, whether it was recovered later or not.
    pub fn gaps_opened(&self) -> u64 {
        self.gaps_opened
    }

    /// Forward jumps larger than [`MAX_JUMP`].
    pub fn discontinuities(&self) -> u64 {
        self.discontinuities
    }

    /// Holes still open now, however recent.
    pub fn missing(&self) -> u64 {
        self.holes.len() as u64 + self.forgotten
    }

    /// Holes that have stayed open for at least `window` at `now`: the packets lost for good
    /// once a retransmission has had `window` to arrive.
    pub fn lost(&self, now: Instant, window: Duration) -> u64 {
        let settled = self
            .holes
            .values()
            .filter(|opened| now.saturating_duration_since(**opened) >= window)
            .count() as u64;
        settled + self.forgotten
    }

    /// The fraction of packets lost for good (see [`lost`](Self::lost)), 0.0 when nothing was
    /// expected.
    pub fn loss_ratio(&self, now: Instant, window: Duration) -> f64 {
        let lost = self.lost(now, window);
        let expected = self.received + lost;
        if expected == 0 {
            0.0
        } else {
            lost as f64 / expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(tracker: &mut SeqTracker, seqs: &[u16], at: Instant) {
        for &seq in seqs {
            let _ = tracker.push(seq, at);
        }
    }

    #[test]
    fn in_order_stream_has_no_gaps() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[10, 11, 12, 13], t0);
        assert_eq!(t.received(), 4);
        assert_eq!(t.gaps_opened(), 0);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.loss_ratio(t0, Duration::ZERO), 0.0);
    }

    #[test]
    fn a_hole_is_lost_only_after_the_window() {
        let t0 = Instant::now();
        let window = Duration::from_secs(1);
        let mut t = SeqTracker::new();
        feed(&mut t, &[1, 2, 5, 6], t0);
        assert_eq!(t.gaps_opened(), 2);
        assert_eq!(t.missing(), 2);
        assert_eq!(t.lost(t0 + Duration::from_millis(500), window), 0);
        assert_eq!(t.lost(t0 + window, window), 2);
        let ratio = t.loss_ratio(t0 + window, window);
        assert!((ratio - 2.0 / 6.0).abs() < 1e-9, "{ratio}");
    }

    #[test]
    fn retransmission_fills_a_hole() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[1, 2, 4], t0);
        t.push(3, t0 + Duration::from_millis(40));
        assert_eq!(t.recovered(), 1);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.received(), 4);
        assert_eq!(t.gaps_opened(), 1);
        assert_eq!(t.lost(t0 + Duration::from_secs(9), Duration::from_secs(1)), 0);
    }

    #[test]
    fn duplicates_are_not_counted_twice() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[7, 8, 8, 9, 7], t0);
        assert_eq!(t.received(), 3);
        assert!(!t.push(9, t0));
        assert!(t.push(10, t0));
        assert_eq!(t.duplicates(), 3);
    }

    #[test]
    fn wraps_around_u16() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[65534, 65535, 0, 2], t0);
        assert_eq!(t.received(), 4);
        assert_eq!(t.gaps_opened(), 1);
        t.push(1, t0);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.extend(3), EXTENDED_BASE + 65536 + 3);
    }

    #[test]
    fn big_jump_is_a_discontinuity_not_loss() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[100, 101, 20000, 20001], t0);
        assert_eq!(t.discontinuities(), 1);
        assert_eq!(t.gaps_opened(), 0);
        assert_eq!(t.received(), 4);
    }

    #[test]
    fn reordered_before_first_is_new() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        feed(&mut t, &[10, 9, 11], t0);
        assert_eq!(t.received(), 3);
        assert_eq!(t.duplicates(), 0);
        t.push(9, t0);
        assert_eq!(t.duplicates(), 1);
    }

    #[test]
    fn extended_numbers_from_str0m() {
        let t0 = Instant::now();
        let mut t = SeqTracker::new();
        for seq in [70_000u64, 70_001, 70_003] {
            t.push_extended(seq, t0);
        }
        assert_eq!(t.missing(), 1);
        assert_eq!(t.lost(t0, Duration::ZERO), 1);
    }
}
