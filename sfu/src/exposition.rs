//! The SFU's families of `/metrics` (`fanout_sfu_*`), written from a [`MetricsSnapshot`].

use std::fmt;

use fanout_metrics::family::{counter, counters, gauge, gauges};
use fanout_metrics::histogram::{Buckets, histogram};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use sfu_core::ESTIMATE_BUCKETS_BPS;

use crate::metrics::{DELAY_BUCKETS_US, MetricsSnapshot};

impl Collector for MetricsSnapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        counter(
            &mut e,
            "fanout_sfu_packets_in",
            "Publisher RTP packets entering the forwarders.",
            self.packets_in,
        )?;
        counter(
            &mut e,
            "fanout_sfu_packets_out",
            "RTP packets forwarded to viewers.",
            self.packets_out,
        )?;
        let bounds = DELAY_BUCKETS_US.map(|us| us as f64 / 1e6);
        histogram(
            &mut e,
            "fanout_sfu_forward_delay_seconds",
            "Server forwarding delay of each packet: received from the publisher -> handed to the \
             kernel for a viewer.",
            Buckets {
                bounds: &bounds,
                counts: &self.delay_counts,
                sum: self.delay_sum.as_secs_f64(),
            },
        )?;
        counter(
            &mut e,
            "fanout_sfu_bytes_in",
            "UDP payload bytes received from peers (media, RTCP, STUN, DTLS).",
            self.bytes_in,
        )?;
        counter(
            &mut e,
            "fanout_sfu_bytes_out",
            "UDP payload bytes sent to peers (media, RTCP, STUN, DTLS).",
            self.bytes_out,
        )?;
        counter(
            &mut e,
            "fanout_sfu_peer_queue_drops",
            "Messages between media workers (packets, keyframe requests) dropped because the \
             receiving worker's queue was full.",
            self.peer_drops,
        )?;
        counter(
            &mut e,
            "fanout_sfu_tap_packets",
            "RTP packets queued for room taps (the LL-HLS bridge).",
            self.tap_packets,
        )?;
        counter(
            &mut e,
            "fanout_sfu_tap_drops",
            "RTP packets room taps dropped because the bridge fell behind (video to the next \
             keyframe).",
            self.tap_drops,
        )?;
        counters(
            &mut e,
            "fanout_sfu_viewer_drops",
            "Packets not sent to a viewer, by reason: `late` (older than the age budget when \
             the worker got to it: the worker is behind), `send_buffer` (the socket's send \
             buffer was full).",
            [("late", self.late_drops), ("send_buffer", self.send_drops)]
                .map(|(reason, n)| ([("reason", reason)], n)),
        )?;
        counter(
            &mut e,
            "fanout_sfu_late_restarts",
            "Times viewers' video stopped at a late packet and waited for a keyframe (viewers \
             restarted together count once).",
            self.late_restarts,
        )?;
        counter(
            &mut e,
            "fanout_sfu_sessions_reaped",
            "WHIP/WHEP sessions closed because ICE and DTLS did not complete in time (an offer \
             whose client never connected).",
            self.sessions_reaped,
        )?;
        gauge(
            &mut e,
            "fanout_sfu_sessions_connecting",
            "WHIP/WHEP sessions created and not connected yet.",
            self.sessions_connecting as i64,
        )?;
        gauges(
            &mut e,
            "fanout_sfu_worker_lag_seconds",
            "Per media worker, the oldest media it forwarded over its last second (kernel \
             receive -> handed back to the kernel).",
            self.worker_lag
                .iter()
                .enumerate()
                .map(|(i, l)| ([("worker", i.to_string())], l.oldest.as_secs_f64())),
        )?;
        gauges(
            &mut e,
            "fanout_sfu_worker_overloaded",
            "1 for a media worker that could not keep up over its last second (it skipped late \
             media, or its oldest forwarded media took over half the video age budget); new \
             viewers go to other workers.",
            self.worker_lag
                .iter()
                .enumerate()
                .map(|(i, l)| ([("worker", i.to_string())], u64::from(l.overloaded()))),
        )?;
        // A gauge with `le` labels rather than a histogram: viewers move between buckets as
        // their estimates change, so the counts go down as well as up.
        let bounds = ESTIMATE_BUCKETS_BPS
            .iter()
            .map(u64::to_string)
            .chain(["+Inf".to_string()]);
        let cumulative = self.estimates.iter().scan(0, |total, n| {
            *total += n;
            Some(*total)
        });
        gauges(
            &mut e,
            "fanout_sfu_viewers_by_estimate",
            "Viewers whose current bandwidth estimate (TWCC) is at most `le` bit/s.",
            bounds.zip(cumulative).map(|(le, n)| ([("le", le)], n)),
        )?;
        gauge(
            &mut e,
            "fanout_sfu_bandwidth_estimate_bps_sum",
            "Sum of the viewers' current bandwidth estimates, bit/s (divide by the +Inf count \
             above for the mean).",
            self.estimate_sum_bps,
        )?;
        gauges(
            &mut e,
            "fanout_sfu_worker_sessions",
            "WebRTC sessions per media worker.",
            self.worker_sessions
                .iter()
                .enumerate()
                .map(|(i, &n)| ([("worker", i.to_string())], n as u64)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fanout_metrics::Exposition;

    use super::*;
    use crate::metrics::Lag;

    #[test]
    fn histogram_is_cumulative_and_counts_the_open_bucket() {
        let mut counts = vec![0; DELAY_BUCKETS_US.len() + 1];
        counts[0] = 2;
        counts[3] = 1;
        *counts.last_mut().expect("non-empty") = 4;
        let m = MetricsSnapshot {
            packets_in: 10,
            packets_out: 70,
            delay_counts: counts,
            delay_sum: Duration::from_millis(1500),
            bytes_in: 1234,
            bytes_out: 98765,
            peer_drops: 3,
            tap_packets: 11,
            tap_drops: 2,
            late_drops: 5,
            late_restarts: 1,
            sessions_reaped: 8,
            sessions_connecting: 2,
            send_drops: 6,
            estimates: vec![0, 1, 2, 0, 0, 0, 0, 1],
            estimate_sum_bps: 9_000_000,
            worker_sessions: vec![3, 4],
            worker_lag: vec![
                Lag::default(),
                Lag {
                    oldest: Duration::from_millis(120),
                    late_drops: 5,
                },
            ],
        };
        let mut exposition = Exposition::default();
        exposition.add(m);
        let out = exposition.encode();
        let delay = "fanout_sfu_forward_delay_seconds";
        assert!(out.contains(&format!("# TYPE {delay} histogram\n")), "{out}");
        assert!(
            out.contains(&format!("{delay}_bucket{{le=\"5e-06\"}} 2\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{delay}_bucket{{le=\"3e-05\"}} 3\n")));
        assert!(out.contains(&format!("{delay}_bucket{{le=\"0.0001\"}} 3\n")));
        assert!(out.contains(&format!("{delay}_bucket{{le=\"0.25\"}} 3\n")));
        assert!(out.contains(&format!("{delay}_bucket{{le=\"+Inf\"}} 7\n")));
        assert!(out.contains(&format!("{delay}_count 7\n")));
        assert!(out.contains(&format!("{delay}_sum 1.5\n")));
        assert!(
            out.contains("# TYPE fanout_sfu_packets_out_total counter\nfanout_sfu_packets_out_total 70\n")
        );
        assert!(out.contains("fanout_sfu_worker_sessions{worker=\"1\"} 4\n"));
        assert!(out.contains("fanout_sfu_bytes_out_total 98765\n"));
        assert!(out.contains("fanout_sfu_sessions_reaped_total 8\n"), "{out}");
        assert!(out.contains("fanout_sfu_sessions_connecting 2\n"), "{out}");
        assert!(out.contains("fanout_sfu_peer_queue_drops_total 3\n"));
        assert!(out.contains("fanout_sfu_tap_packets_total 11\n"));
        assert!(out.contains("fanout_sfu_tap_drops_total 2\n"));
        assert!(
            out.contains("fanout_sfu_viewer_drops_total{reason=\"late\"} 5\n"),
            "{out}"
        );
        assert!(out.contains("fanout_sfu_viewer_drops_total{reason=\"send_buffer\"} 6\n"));
        assert!(out.contains("fanout_sfu_late_restarts_total 1\n"));
        assert!(
            out.contains("fanout_sfu_worker_lag_seconds{worker=\"1\"} 0.12\n"),
            "{out}"
        );
        assert!(out.contains("fanout_sfu_worker_overloaded{worker=\"0\"} 0\n"));
        assert!(out.contains("fanout_sfu_worker_overloaded{worker=\"1\"} 1\n"));
        assert!(out.contains("# TYPE fanout_sfu_viewers_by_estimate gauge\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"500000\"} 1\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"1000000\"} 3\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"+Inf\"} 4\n"));
        assert!(out.contains("fanout_sfu_bandwidth_estimate_bps_sum 9000000\n"));
    }
}
