//! The counters a worker exports.

/// Upper bounds of the bandwidth-estimate buckets of [`WorkerStats::estimates`], in bit/s
/// (the last bucket is open).
pub const ESTIMATE_BUCKETS_BPS: [u64; 7] = [
    250_000, 500_000, 1_000_000, 1_500_000, 2_500_000, 4_000_000, 8_000_000,
];

/// Counters for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerStats {
    /// Live sessions.
    pub sessions: usize,
    /// Publisher packets received (or handed over by another worker).
    pub packets_in: u64,
    /// Packets written to subscribers.
    pub packets_out: u64,
    /// Subscribers by their current bandwidth estimate (TWCC), per bucket of
    /// [`ESTIMATE_BUCKETS_BPS`] (not cumulative; the last slot is the open bucket).
    pub estimates: [u64; ESTIMATE_BUCKETS_BPS.len() + 1],
    /// Sum of the subscribers' current estimates, bit/s.
    pub estimate_sum_bps: u64,
    /// Packets queued for room taps.
    pub tap_packets: u64,
    /// Packets a room tap dropped because its consumer fell behind.
    pub tap_drops: u64,
    /// Viewer copies not written because the media was older than its age budget by the
    /// time the worker got to it (the worker is behind).
    pub late_drops: u64,
    /// Times a viewer's video stopped for that reason and waited for a keyframe, counted per
    /// layer and packet (viewers restarted together count once).
    pub late_restarts: u64,
    /// Sessions closed because they were not connected in time (`WorkerConfig::connect_timeout`).
    pub sessions_reaped: u64,
}

impl WorkerStats {
    /// A subscriber's estimate went from `old` to `new` (`None`: it did not exist / left).
    pub(super) fn estimate_moved(&mut self, old: Option<u64>, new: Option<u64>) {
        let bucket = |bps: u64| ESTIMATE_BUCKETS_BPS.partition_point(|&b| b < bps);
        if let Some(old) = old {
            self.estimates[bucket(old)] -= 1;
            self.estimate_sum_bps -= old;
        }
        if let Some(new) = new {
            self.estimates[bucket(new)] += 1;
            self.estimate_sum_bps += new;
        }
    }
}
