//! How far behind real time a stream is delivered, from arrival times and RTP timestamps alone.
//!
//! Each frame's *offset* is its arrival time minus its media time (RTP timestamp / clock rate),
//! both counted from the first packet. The smallest offset seen is the best-case delivery; the
//! lag of a frame is how much later than that it arrived. A sender that keeps up shows a lag
//! near zero (jitter only); a lag that grows means the media arrives slower than it is produced
//! (a pacer queue building up, say), and glass-to-glass latency grows by as much. A burst at
//! start (a server that sends the cached GOP first) only lowers the reference, it is not lag.

use std::time::Instant;

/// Tracks the delivery lag of one RTP stream.
#[derive(Debug, Clone)]
pub struct MediaLag {
    clock_rate: u32,
    first: Option<(Instant, u64)>,
    newest_ts: Option<u64>,
    newest_offset: f64,
    min_offset: f64,
    max_lag: f64,
}

impl MediaLag {
    /// A tracker for a stream with this RTP clock rate (90 000 for video, 48 000 for Opus).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            first: None,
            newest_ts: None,
            newest_offset: 0.0,
            min_offset: 0.0,
            max_lag: 0.0,
        }
    }

    /// Records a packet with a 32-bit RTP timestamp that arrived at `at`.
    pub fn push(&mut self, timestamp: u32, at: Instant) {
        let extended = match self.newest_ts {
            None => (1u64 << 32) + u64::from(timestamp),
            Some(newest) => {
                // Truncation is the point: the signed 32-bit distance picks the nearest cycle.
                let delta = i64::from(timestamp.wrapping_sub(newest as u32) as i32);
                newest.saturating_add_signed(delta)
            }
        };
        self.push_extended(extended, at);
    }

    /// Records a packet whose timestamp is already extended (str0m's media time).
    pub fn push_extended(&mut self, timestamp: u64, at: Instant) {
        let Some((first_at, first_ts)) = self.first else {
            self.first = Some((at, timestamp));
            self.newest_ts = Some(timestamp);
            return;
        };
        if self.newest_ts.is_some_and(|newest| timestamp <= newest) {
            // Late packets of older frames say nothing about how current the stream is.
            return;
        }
        self.newest_ts = Some(timestamp);
        let wall = at.saturating_duration_since(first_at).as_secs_f64();
        let media = timestamp.saturating_sub(first_ts) as f64 / f64::from(self.clock_rate);
        let offset = wall - media;
        self.min_offset = self.min_offset.min(offset);
        self.newest_offset = offset;
        self.max_lag = self.max_lag.max(offset - self.min_offset);
    }

    /// Lag of the newest frame behind the best-delivered one, milliseconds.
    pub fn lag_ms(&self) -> Option<f64> {
        self.first?;
        Some((self.newest_offset - self.min_offset) * 1e3)
    }

    /// The largest lag seen so far, milliseconds.
    pub fn max_lag_ms(&self) -> f64 {
        self.max_lag * 1e3
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn real_time_delivery_has_no_lag() {
        let t0 = Instant::now();
        let mut lag = MediaLag::new(90_000);
        for i in 0..30u32 {
            lag.push(1000 + i * 3000, t0 + ms(u64::from(i) * 100 / 3));
        }
        assert!(lag.lag_ms().expect("lag").abs() < 1.0);
        assert!(lag.max_lag_ms() < 1.0);
    }

    #[test]
    fn slow_delivery_accumulates_lag() {
        let t0 = Instant::now();
        let mut lag = MediaLag::new(90_000);
        // 1 s of media delivered over 1.5 s.
        for i in 0..=30u32 {
            lag.push(i * 3000, t0 + ms(u64::from(i) * 50));
        }
        let lag_ms = lag.lag_ms().expect("lag");
        assert!((lag_ms - 500.0).abs() < 1.0, "{lag_ms}");
        assert!((lag.max_lag_ms() - 500.0).abs() < 1.0);
    }

    #[test]
    fn a_burst_at_start_is_not_lag() {
        let t0 = Instant::now();
        let mut lag = MediaLag::new(90_000);
        // Ten cached frames (333 ms of media) arrive at once, then real time.
        for i in 0..10u32 {
            lag.push(i * 3000, t0);
        }
        for i in 10..40u32 {
            lag.push(i * 3000, t0 + ms(u64::from(i - 10) * 100 / 3));
        }
        let lag_ms = lag.lag_ms().expect("lag");
        assert!(lag_ms.abs() < 1.0, "{lag_ms}");
    }

    #[test]
    fn late_packets_and_wrap() {
        let t0 = Instant::now();
        let mut lag = MediaLag::new(90_000);
        lag.push(u32::MAX - 1499, t0);
        lag.push(1500, t0 + ms(1000 / 30));
        // A retransmission of the first frame, much later: ignored.
        lag.push(u32::MAX - 1499, t0 + Duration::from_secs(2));
        assert!(lag.lag_ms().expect("lag").abs() < 1.0);
        assert!(MediaLag::new(48_000).lag_ms().is_none());
    }
}
