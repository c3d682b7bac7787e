//! The wall-clock time of every packet of a track, from its RTP timestamps.
//!
//! A track's clock is based once, on its first packet: the publisher's capture time of that
//! packet when its RTCP sender reports are known (then PROGRAM-DATE-TIME is the true capture
//! time of each frame), else the server's arrival time. Every later packet is placed by its
//! RTP timestamp from there, so the media keeps the sender's timing however the network
//! jittered it. The tap's timestamps are continuous across layer switches and publisher
//! reconnects, and advance with the wall clock across them, so one base serves a whole run.

use std::time::{Duration, Instant, SystemTime};

/// What a track's clock is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The publisher's capture time (RTCP sender reports).
    Capture,
    /// The server's arrival time.
    Arrival,
}

/// Turns the server's monotonic arrival times into wall-clock times.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    wall: SystemTime,
}

impl WallClock {
    /// The pair `instant` = `wall`, read together.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        WallClock { instant, wall }
    }

    /// The wall-clock time of `at`.
    pub fn wall(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.instant) {
            Some(d) => self.wall + d,
            None => self.wall - self.instant.duration_since(at),
        }
    }
}

/// One track's clock.
#[derive(Debug, Clone)]
pub struct TrackClock {
    rate: u32,
    /// The last RTP timestamp seen, and its extended (wrap-free) value.
    last: Option<(u32, i64)>,
    /// The extended timestamp of the base, and its wall-clock time.
    base: Option<(i64, SystemTime)>,
    basis: Basis,
}

impl TrackClock {
    /// A clock for a track whose RTP clock runs at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        TrackClock {
            rate: rate.max(1),
            last: None,
            base: None,
            basis: Basis::Arrival,
        }
    }

    /// What the clock was based on (arrival until its first packet).
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// The wall-clock time of a packet with RTP timestamp `rtp`, captured at `capture` (when
    /// the sender's reports say) and arrived at `arrival`.
    pub fn wall(&mut self, rtp: u32, capture: Option<SystemTime>, arrival: SystemTime) -> SystemTime {
        let ext = self.extend(rtp);
        let (base_ext, base_wall) = *self.base.get_or_insert_with(|| match capture {
            Some(t) => {
                self.basis = Basis::Capture;
                (ext, t)
            }
            None => (ext, arrival),
        });
        let ticks = ext - base_ext;
        let offset = Duration::from_nanos(ticks.unsigned_abs() * 1_000_000_000 / u64::from(self.rate));
        if ticks >= 0 {
            base_wall + offset
        } else {
            base_wall.checked_sub(offset).unwrap_or(base_wall)
        }
    }

    fn extend(&mut self, rtp: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(rtp),
            Some((last, last_ext)) => last_ext + i64::from(rtp.wrapping_sub(last) as i32),
        };
        self.last = Some((rtp, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
    }

    #[test]
    fn packets_are_placed_by_their_timestamps_not_their_arrival() {
        let mut c = TrackClock::new(90_000);
        assert_eq!(c.wall(1_000, None, at(0)), at(0));
        // 33 ms later by the sender's clock, whatever the jitter.
        assert_eq!(c.wall(1_000 + 2_970, None, at(80)), at(33));
        assert_eq!(c.basis(), Basis::Arrival);
        // A late, reordered packet lands before the newest one.
        assert_eq!(c.wall(1_000 + 1_800, None, at(90)), at(20));
    }

    #[test]
    fn a_sender_report_bases_the_clock_on_capture_time() {
        let mut c = TrackClock::new(48_000);
        assert_eq!(c.wall(0, Some(at(100)), at(130)), at(100));
        assert_eq!(c.basis(), Basis::Capture);
        assert_eq!(
            c.wall(960, Some(at(999)), at(151)),
            at(120),
            "one base for the run"
        );
    }

    #[test]
    fn timestamps_wrap() {
        let mut c = TrackClock::new(90_000);
        c.wall(u32::MAX - 89_999, None, at(0));
        assert_eq!(c.wall(90_000, None, at(0)), at(2_000));
    }

    #[test]
    fn arrival_instants_become_wall_times() {
        let now = Instant::now();
        let w = WallClock::new(now, at(500));
        assert_eq!(w.wall(now + Duration::from_millis(20)), at(520));
        if let Some(before) = now.checked_sub(Duration::from_millis(20)) {
            assert_eq!(w.wall(before), at(480));
        }
    }
}
