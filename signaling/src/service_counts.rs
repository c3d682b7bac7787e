//! What the control-plane services count, read for one scrape of `/metrics`: streams and WHEP
//! viewers, each watched stream's audience, webhook attempts and API requests refused.

use std::fmt;

use fanout_metrics::family::{counter, counters, gauge, gauges};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::state::AppState;

/// A reading of the services' counts.
#[derive(Debug, Default)]
pub(crate) struct ServiceCounts {
    streams_active: u64,
    whep_viewers: u64,
    /// Current viewers per watched stream (WHEP, HLS and chat together), as of the last sweep.
    watched: Vec<(String, u64)>,
    /// Webhook attempts: (delivered, failed and retried, given up).
    webhooks: (u64, u64, u64),
    rate_limited: u64,
}

impl ServiceCounts {
    /// The counts, with every stream's viewers or (`public_only`) the public streams' only.
    pub(crate) fn read(state: &AppState, public_only: bool) -> Self {
        let mut watched = state.viewers.watched();
        if public_only {
            watched.retain(|(stream, _)| !state.private.contains(stream));
        }
        ServiceCounts {
            streams_active: state.streams.running() as u64,
            whep_viewers: state.viewers.whep_total() as u64,
            watched,
            webhooks: state.webhooks.as_ref().map(|w| w.counts()).unwrap_or_default(),
            rate_limited: state.limiter.refused(),
        }
    }
}

impl Collector for ServiceCounts {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut e,
            "fanout_streams_active",
            "Streams with a publisher or viewers.",
            self.streams_active,
        )?;
        gauge(
            &mut e,
            "fanout_whep_viewers",
            "Connected WHEP viewers.",
            self.whep_viewers,
        )?;
        gauges(
            &mut e,
            "fanout_stream_viewers",
            "Distinct viewers of a stream within the counting window (HyperLogLog).",
            self.watched
                .iter()
                .map(|(stream, n)| ([("stream", stream.as_str())], *n)),
        )?;
        let (ok, retry, failed) = self.webhooks;
        counters(
            &mut e,
            "fanout_webhook_deliveries",
            "Webhook delivery attempts: ok (2xx), retry (failed, tried again), failed (given up \
             after the last retry).",
            [("ok", ok), ("retry", retry), ("failed", failed)].map(|(result, n)| ([("result", result)], n)),
        )?;
        counter(
            &mut e,
            "fanout_api_rate_limited",
            "API and session requests refused with 429.",
            self.rate_limited,
        )
    }
}

#[cfg(test)]
mod tests {
    use fanout_metrics::Exposition;

    use super::*;

    #[test]
    fn stream_viewers_by_label_webhooks_by_result() {
        let counts = ServiceCounts {
            streams_active: 2,
            whep_viewers: 1,
            watched: vec![("a1".into(), 10), ("b\"2".into(), 0)],
            webhooks: (5, 2, 1),
            rate_limited: 4,
        };
        let mut exposition = Exposition::default();
        exposition.add(counts);
        let out = exposition.encode();
        assert!(
            out.contains("# TYPE fanout_streams_active gauge\nfanout_streams_active 2\n"),
            "{out}"
        );
        assert!(out.contains("fanout_whep_viewers 1\n"));
        assert!(out.contains("# TYPE fanout_stream_viewers gauge\n"));
        assert!(out.contains("fanout_stream_viewers{stream=\"a1\"} 10\n"));
        assert!(out.contains("fanout_stream_viewers{stream=\"b\\\"2\"} 0\n"));
        assert!(out.contains("# TYPE fanout_webhook_deliveries_total counter\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"ok\"} 5\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"retry\"} 2\n"));
        assert!(out.contains("fanout_webhook_deliveries_total{result=\"failed\"} 1\n"));
        assert!(
            out.contains("# TYPE fanout_api_rate_limited_total counter\nfanout_api_rate_limited_total 4\n")
        );
    }
}
