//! Counters and the forwarding-delay histogram the workers keep for `/metrics`.
//!
//! Workers write with relaxed atomics after each send batch (one add per bucket touched,
//! never a lock); readers take a [`MetricsSnapshot`], which `exposition.rs` writes as the
//! `fanout_sfu_*` families of `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sfu_core::{ESTIMATE_BUCKETS_BPS, WorkerStats};

/// Upper bounds of the forwarding-delay buckets, in microseconds (the last bucket is open).
pub const DELAY_BUCKETS_US: [u64; 22] = [
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 20_000,
    50_000, 100_000, 250_000,
];

/// How far behind a worker was over its last window (about a second), as it reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// The oldest media it forwarded: kernel receive -> handed back to the kernel.
    pub oldest: Duration,
    /// Viewer copies it did not send because they were past their age budget.
    pub late_drops: u64,
}

impl Lag {
    /// A worker that skips late media, or whose oldest forwarded media took more than half
    /// the video age budget, cannot keep up: new sessions go elsewhere.
    pub fn overloaded(&self) -> bool {
        self.late_drops > 0 || self.oldest > sfu_core::VIDEO_AGE_BUDGET / 2
    }
}

/// One worker's [`Lag`], written by its thread once per window and read by the control plane
/// (placement, `/readyz`, `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Pressure {
    oldest_us: AtomicU64,
    late_drops: AtomicU64,
}

impl Pressure {
    pub(crate) fn set(&self, lag: Lag) {
        self.oldest_us
            .store(lag.oldest.as_micros() as u64, Ordering::Relaxed);
        self.late_drops.store(lag.late_drops, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Lag {
        Lag {
            oldest: Duration::from_micros(self.oldest_us.load(Ordering::Relaxed)),
            late_drops: self.late_drops.load(Ordering::Relaxed),
        }
    }
}

/// Shared by the workers and the handle.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    /// Per bucket counts (not cumulative); the extra slot is the open `+Inf` bucket.
    delay: [AtomicU64; DELAY_BUCKETS_US.len() + 1],
    delay_sum_ns: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    peer_drops: AtomicU64,
    tap_packets: AtomicU64,
    tap_drops: AtomicU64,
    late_drops: AtomicU64,
    late_restarts: AtomicU64,
    sessions_reaped: AtomicU64,
    send_drops: AtomicU64,
    /// Viewers per estimate bucket, summed over workers (each adds its changes).
    estimates: [AtomicU64; ESTIMATE_BUCKETS_BPS.len() + 1],
    estimate_sum_bps: AtomicU64,
}

/// What a worker has published so far, so it adds only what changed.
#[derive(Debug, Default)]
pub(crate) struct Published {
    stats: WorkerStats,
    /// UDP payload bytes received and sent since the last publish.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Messages another worker's full queue refused since the last publish.
    pub peer_drops: u64,
    /// Datagrams the kernel would not take (a full send buffer) since the last publish.
    pub send_drops: u64,
}

/// A worker's local tally, folded into [`Metrics`] once per loop.
#[derive(Debug, Default)]
pub(crate) struct DelayTally {
    counts: [u64; DELAY_BUCKETS_US.len() + 1],
    sum_ns: u64,
    touched: bool,
}

impl DelayTally {
    pub(crate) fn record(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        let i = DELAY_BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i] += 1;
        self.sum_ns += d.as_nanos() as u64;
        self.touched = true;
    }
}

impl Metrics {
    /// Fold a worker's tally and counters in (what changed since `last`), and clear the tally.
    pub(crate) fn publish(&self, tally: &mut DelayTally, now: WorkerStats, last: &mut Published) {
        let add = |a: &AtomicU64, delta: u64| {
            if delta != 0 {
                // Gauges move both ways: a wrapping add of the wrapped difference.
                a.fetch_add(delta, Ordering::Relaxed);
            }
        };
        add(&self.packets_in, now.packets_in - last.stats.packets_in);
        add(&self.packets_out, now.packets_out - last.stats.packets_out);
        add(&self.tap_packets, now.tap_packets - last.stats.tap_packets);
        add(&self.tap_drops, now.tap_drops - last.stats.tap_drops);
        add(&self.late_drops, now.late_drops - last.stats.late_drops);
        add(&self.late_restarts, now.late_restarts - last.stats.late_restarts);
        add(
            &self.sessions_reaped,
            now.sessions_reaped - last.stats.sessions_reaped,
        );
        add(&self.send_drops, std::mem::take(&mut last.send_drops));
        add(&self.bytes_in, std::mem::take(&mut last.bytes_in));
        add(&self.bytes_out, std::mem::take(&mut last.bytes_out));
        add(&self.peer_drops, std::mem::take(&mut last.peer_drops));
        for ((slot, new), old) in self.estimates.iter().zip(now.estimates).zip(last.stats.estimates) {
            add(slot, new.wrapping_sub(old));
        }
        add(
            &self.estimate_sum_bps,
            now.estimate_sum_bps.wrapping_sub(last.stats.estimate_sum_bps),
        );
        last.stats = now;
        if !tally.touched {
            return;
        }
        for (slot, n) in self.delay.iter().zip(tally.counts.iter_mut()) {
            if *n > 0 {
                slot.fetch_add(*n, Ordering::Relaxed);
                *n = 0;
            }
        }
        self.delay_sum_ns.fetch_add(tally.sum_ns, Ordering::Relaxed);
        tally.sum_ns = 0;
        tally.touched = false;
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
            delay_counts: self.delay.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            delay_sum: Duration::from_nanos(self.delay_sum_ns.load(Ordering::Relaxed)),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            peer_drops: self.peer_drops.load(Ordering::Relaxed),
            tap_packets: self.tap_packets.load(Ordering::Relaxed),
            tap_drops: self.tap_drops.load(Ordering::Relaxed),
            late_drops: self.late_drops.load(Ordering::Relaxed),
            late_restarts: self.late_restarts.load(Ordering::Relaxed),
            sessions_reaped: self.sessions_reaped.load(Ordering::Relaxed),
            sessions_connecting: 0,
            send_drops: self.send_drops.load(Ordering::Relaxed),
            estimates: self.estimates.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            estimate_sum_bps: self.estimate_sum_bps.load(Ordering::Relaxed),
            worker_sessions: Vec::new(),
            worker_lag: Vec::new(),
        }
    }
}

/// The SFU's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Publisher packets received by the worker that hosts the publisher, plus the copies
    /// other workers received from it.
    pub packets_in: u64,
    /// Packets written to viewers.
    pub packets_out: u64,
    /// Forwarded packets per delay bucket (receive -> handed to the kernel), bounds in
    /// [`DELAY_BUCKETS_US`], last entry the open bucket. Not cumulative.
    pub delay_counts: Vec<u64>,
    /// Sum of all forwarding delays.
    pub delay_sum: Duration,
    /// UDP payload bytes received (media, RTCP, STUN, DTLS).
    pub bytes_in: u64,
    /// UDP payload bytes sent.
    pub bytes_out: u64,
    /// Messages (media packets, keyframe requests, interest) dropped because the receiving
    /// worker's queue was full.
    pub peer_drops: u64,
    /// Packets queued for room taps (the LL-HLS bridge).
    pub tap_packets: u64,
    /// Packets room taps dropped because their consumer fell behind.
    pub tap_drops: u64,
    /// Viewer copies of packets not sent because they were older than their age budget when
    /// the worker got to them.
    pub late_drops: u64,
    /// Viewers' video stopped for that reason until a keyframe (per layer and packet).
    pub late_restarts: u64,
    /// Sessions closed because they did not connect in time.
    pub sessions_reaped: u64,
    /// Sessions created and not connected yet.
    pub sessions_connecting: usize,
    /// Datagrams the kernel would not take because a socket's send buffer was full.
    pub send_drops: u64,
    /// Viewers by current bandwidth estimate, per bucket of [`ESTIMATE_BUCKETS_BPS`] (not
    /// cumulative; the last entry is the open bucket).
    pub estimates: Vec<u64>,
    /// Sum of the viewers' current estimates, bit/s.
    pub estimate_sum_bps: u64,
    /// Live sessions per worker (as the control plane placed them), worker 0 first.
    pub worker_sessions: Vec<usize>,
    /// Each worker's lag over its last second, worker 0 first (see [`Pressure`]).
    pub worker_lag: Vec<Lag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_land_in_their_buckets() {
        let m = Metrics::default();
        let mut t = DelayTally::default();
        t.record(Duration::from_micros(3));
        t.record(Duration::from_micros(5));
        t.record(Duration::from_micros(6));
        t.record(Duration::from_millis(400));
        let mut last = Published {
            bytes_in: 3000,
            bytes_out: 9000,
            peer_drops: 7,
            ..Default::default()
        };
        let mut now = WorkerStats {
            packets_in: 2,
            packets_out: 4,
            estimate_sum_bps: 3_000_000,
            ..Default::default()
        };
        now.estimates[2] = 1; // one viewer at 1 Mbit/s
        now.estimates[4] = 1; // one at 2 Mbit/s
        m.publish(&mut t, now, &mut last);
        let s = m.snapshot();
        assert_eq!(s.packets_in, 2);
        assert_eq!(s.packets_out, 4);
        assert_eq!(s.delay_counts[0], 2, "3 and 5 us are <= 5 us");
        assert_eq!(s.delay_counts[1], 1);
        assert_eq!(s.delay_counts[DELAY_BUCKETS_US.len()], 1);
        assert_eq!(s.delay_sum, Duration::from_micros(400_014));
        assert_eq!((s.bytes_in, s.bytes_out, s.peer_drops), (3000, 9000, 7));
        assert_eq!(s.estimates[2..5], [1, 0, 1]);
        // The tally was cleared: publishing again adds nothing.
        m.publish(&mut t, now, &mut last);
        assert_eq!(m.snapshot().delay_counts.iter().sum::<u64>(), 4);
        assert_eq!(m.snapshot().bytes_in, 3000);
        // The 2 Mbit/s viewer leaves: the gauges come down.
        now.estimates[4] = 0;
        now.estimate_sum_bps = 1_000_000;
        m.publish(&mut t, now, &mut last);
        let s = m.snapshot();
        assert_eq!(s.estimates[2..5], [1, 0, 0]);
        assert_eq!(s.estimate_sum_bps, 1_000_000);
    }
}
