//! `GET /metrics`: Prometheus text exposition of the SFU's counters and histograms.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use sfu::{DELAY_BUCKETS_US, ESTIMATE_BUCKETS_BPS, MetricsSnapshot};

use crate::exposition::{buckets, gauge};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let sfu = &state.sfu;
    let (viewers, streams) = (state.viewers.whep_total(), state.streams.running());
    let mut out = String::with_capacity(4096);
    render_sfu(&mut out, &sfu.metrics(), &sfu.worker_loads());
    gauge(
        &mut out,
        "fanout_streams_active",
        "Streams with a publisher or viewers.",
        streams as u64,
    );
    gauge(
        &mut out,
        "fanout_whep_viewers",
        "Connected WHEP viewers.",
        viewers as u64,
    );
    crate::stream_health::render(&state, &mut out).await;
    render_audience(&mut out, &state.viewers.watched());
    let webhooks = state.webhooks.as_ref().map_or((0, 0, 0), |w| w.counts());
    render_webhooks(&mut out, webhooks);
    let refused = state.limiter.as_ref().map_or(0, |l| l.refused());
    let _ = writeln!(
        out,
        "# HELP fanout_api_rate_limited_total API and session requests refused with 429.\n\
         # TYPE fanout_api_rate_limited_total counter\nfanout_api_rate_limited_total {refused}"
    );
    state.player_latency.render(&mut out);
    let chat = state.config.chat.as_ref().map(|c| c.state.stats());
    let hls = state.config.hls.as_ref().map(hls::Origin::stats);
    if let Some(c) = &chat {
        chat::stats::render(&mut out, c);
    }
    if let Some(h) = &hls {
        hls::stats::render(&mut out, h);
    }
    // One family for every source's errors.
    out.push_str(chat::stats::ERRORS_HEADER);
    out.push('\n');
    for (kind, n) in crate::error::api_error_counts() {
        let _ = writeln!(out, "fanout_errors_total{{source=\"api\",kind=\"{kind}\"}} {n}");
    }
    if let Some(c) = &chat {
        chat::stats::render_errors(&mut out, c);
    }
    if let Some(h) = &hls {
        hls::stats::render_errors(&mut out, h);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
}

/// Webhook attempts: (delivered, failed and retried, given up).
pub(crate) fn render_webhooks(out: &mut String, (ok, retry, failed): (u64, u64, u64)) {
    let name = "fanout_webhook_deliveries_total";
    let _ = writeln!(
        out,
        "# HELP {name} Webhook delivery attempts: ok (2xx), retry (failed, tried again), \
         failed (given up after the last retry).\n# TYPE {name} counter"
    );
    for (result, n) in [("ok", ok), ("retry", retry), ("failed", failed)] {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
    }
}

/// Current viewers per stream (WHEP, HLS and chat together), as of the last sweep.
pub(crate) fn render_audience(out: &mut String, streams: &[(String, u64)]) {
    let name = "fanout_stream_viewers";
    let _ = writeln!(
        out,
        "# HELP {name} Distinct viewers of a stream within the counting window (HyperLogLog).\n\
         # TYPE {name} gauge"
    );
    for (stream, n) in streams {
        // Stream ids are plain tokens; escape anyway, a label must not break the exposition.
        let label = stream
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(out, "{name}{{stream=\"{label}\"}} {n}");
    }
}

/// The SFU's part of the exposition (pure, so it is tested without a server).
pub(crate) fn render_sfu(out: &mut String, m: &MetricsSnapshot, loads: &[usize]) {
    let _ = writeln!(
        out,
        "# HELP fanout_sfu_packets_in_total Publisher RTP packets entering the forwarders.\n\
         # TYPE fanout_sfu_packets_in_total counter\nfanout_sfu_packets_in_total {}",
        m.packets_in
    );
    let _ = writeln!(
        out,
        "# HELP fanout_sfu_packets_out_total RTP packets forwarded to viewers.\n\
         # TYPE fanout_sfu_packets_out_total counter\nfanout_sfu_packets_out_total {}",
        m.packets_out
    );
    let name = "fanout_sfu_forward_delay_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Server forwarding delay of each packet: received from the publisher -> \
         handed to the kernel for a viewer.\n# TYPE {name} histogram"
    );
    let seconds = DELAY_BUCKETS_US.iter().map(|&us| us as f64 / 1e6);
    let total = buckets(out, &format!("{name}_bucket"), "", seconds, &m.delay_counts);
    let _ = writeln!(out, "{name}_sum {}", m.delay_sum.as_secs_f64());
    let _ = writeln!(out, "{name}_count {total}");
    let bytes = [
        ("in", m.bytes_in, "received from peers"),
        ("out", m.bytes_out, "sent to peers"),
    ];
    for (dir, n, what) in bytes {
        let _ = writeln!(
            out,
            "# HELP fanout_sfu_bytes_{dir}_total UDP payload bytes {what} (media, RTCP, STUN, DTLS).\n\
             # TYPE fanout_sfu_bytes_{dir}_total counter\nfanout_sfu_bytes_{dir}_total {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP fanout_sfu_peer_queue_drops_total Messages between media workers (packets, \
         keyframe requests) dropped because the receiving worker's queue was full.\n\
         # TYPE fanout_sfu_peer_queue_drops_total counter\nfanout_sfu_peer_queue_drops_total {}",
        m.peer_drops
    );
    let _ = writeln!(
        out,
        "# HELP fanout_sfu_tap_packets_total RTP packets queued for room taps (the LL-HLS bridge).\n\
         # TYPE fanout_sfu_tap_packets_total counter\nfanout_sfu_tap_packets_total {}\n\
         # HELP fanout_sfu_tap_drops_total RTP packets room taps dropped because the bridge fell \
         behind (video to the next keyframe).\n\
         # TYPE fanout_sfu_tap_drops_total counter\nfanout_sfu_tap_drops_total {}",
        m.tap_packets, m.tap_drops
    );
    let name = "fanout_sfu_viewers_by_estimate";
    let _ = writeln!(
        out,
        "# HELP {name} Viewers whose current bandwidth estimate (TWCC) is at most `le` bit/s.\n\
         # TYPE {name} gauge"
    );
    buckets(out, name, "", ESTIMATE_BUCKETS_BPS, &m.estimates);
    let name = "fanout_sfu_bandwidth_estimate_bps_sum";
    let _ = writeln!(
        out,
        "# HELP {name} Sum of the viewers' current bandwidth estimates, bit/s (divide by the \
         +Inf count above for the mean).\n# TYPE {name} gauge\n{name} {}",
        m.estimate_sum_bps
    );
    let _ = writeln!(
        out,
        "# HELP fanout_sfu_worker_sessions WebRTC sessions per media worker.\n\
         # TYPE fanout_sfu_worker_sessions gauge"
    );
    for (i, n) in loads.iter().enumerate() {
        let _ = writeln!(out, "fanout_sfu_worker_sessions{{worker=\"{i}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
            estimates: vec![0, 1, 2, 0, 0, 0, 0, 1],
            estimate_sum_bps: 9_000_000,
        };
        let mut out = String::new();
        render_sfu(&mut out, &m, &[3, 4]);
        assert!(out.contains("fanout_sfu_forward_delay_seconds_bucket{le=\"0.000005\"} 2\n"));
        assert!(out.contains("fanout_sfu_forward_delay_seconds_bucket{le=\"0.00003\"} 3\n"));
        assert!(out.contains("fanout_sfu_forward_delay_seconds_bucket{le=\"0.25\"} 3\n"));
        assert!(out.contains("fanout_sfu_forward_delay_seconds_bucket{le=\"+Inf\"} 7\n"));
        assert!(out.contains("fanout_sfu_forward_delay_seconds_count 7\n"));
        assert!(out.contains("fanout_sfu_forward_delay_seconds_sum 1.5\n"));
        assert!(out.contains("fanout_sfu_packets_out_total 70\n"));
        assert!(out.contains("fanout_sfu_worker_sessions{worker=\"1\"} 4\n"));
        assert!(out.contains("fanout_sfu_bytes_out_total 98765\n"));
        assert!(out.contains("fanout_sfu_peer_queue_drops_total 3\n"));
        assert!(out.contains("fanout_sfu_tap_packets_total 11\n"));
        assert!(out.contains("fanout_sfu_tap_drops_total 2\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"500000\"} 1\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"1000000\"} 3\n"));
        assert!(out.contains("fanout_sfu_viewers_by_estimate{le=\"+Inf\"} 4\n"));
        assert!(out.contains("fanout_sfu_bandwidth_estimate_bps_sum 9000000\n"));
    }

    #[test]
    fn stream_viewers_are_one_gauge_with_a_label_per_stream() {
        let mut out = String::new();
        render_audience(&mut out, &[("a1".into(), 10), ("b\"2".into(), 0)]);
        assert!(out.contains("# TYPE fanout_stream_viewers gauge\n"));
        assert!(out.contains("fanout_stream_viewers{stream=\"a1\"} 10\n"));
        assert!(out.contains("fanout_stream_viewers{stream=\"b\\\"2\"} 0\n"));
    }

    #[test]
    fn webhook_counters_by_result() {
        let mut out = String::new();
        render_webhooks(&mut out, (5, 2, 1));
        assert!(out.contains("# TYPE fanout_webhook_deliveries_total counter\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"ok\"} 5\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"retry\"} 2\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"failed\"} 1\n"));
    }
}
