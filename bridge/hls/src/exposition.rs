//! The origin's families of `/metrics` (`fanout_hls_*`) and its part of `fanout_errors_total`,
//! written from an [`OriginStats`] reading.

use std::fmt;

use fanout_metrics::ErrorSource;
use fanout_metrics::family::{counters, gauge};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::stats::OriginStats;

impl Collector for OriginStats {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        counters(
            &mut e,
            "fanout_hls_requests",
            "LL-HLS requests by what they asked for.",
            self.requests
                .iter()
                .map(|&(kind, n, _)| ([("kind", kind.as_str())], n)),
        )?;
        counters(
            &mut e,
            "fanout_hls_bytes",
            "LL-HLS body bytes served by what they were.",
            self.requests
                .iter()
                .map(|&(kind, _, bytes)| ([("kind", kind.as_str())], bytes)),
        )?;
        gauge(
            &mut e,
            "fanout_hls_held_requests",
            "Blocking playlist and part requests waiting for media.",
            self.held,
        )
    }
}

/// `fanout_errors_total{source="hls"}`: refusals by reason.
impl ErrorSource for OriginStats {
    fn source(&self) -> &'static str {
        "hls"
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        self.errors.clone()
    }
}

#[cfg(test)]
mod tests {
    use fanout_metrics::Exposition;

    use super::*;
    use crate::stats::RequestKind;

    #[test]
    fn a_reading_is_prometheus_text() {
        let stats = OriginStats {
            requests: RequestKind::ALL
                .iter()
                .map(|&k| match k {
                    RequestKind::Part => (k, 2, 1500),
                    _ => (k, 0, 0),
                })
                .collect(),
            errors: vec![("bad_request", 1), ("not_found", 4), ("unavailable", 0)],
            held: 3,
        };
        let mut exposition = Exposition::default();
        exposition.add(stats.clone()).errors(stats);
        let out = exposition.encode();
        assert!(
            out.contains("# TYPE fanout_hls_requests_total counter\n"),
            "{out}"
        );
        assert!(out.contains("fanout_hls_requests_total{kind=\"part\"} 2\n"));
        assert!(out.contains("fanout_hls_requests_total{kind=\"segment\"} 0\n"));
        assert!(out.contains("fanout_hls_bytes_total{kind=\"part\"} 1500\n"));
        assert!(out.contains("# TYPE fanout_hls_held_requests gauge\nfanout_hls_held_requests 3\n"));
        assert!(out.contains("fanout_errors_total{source=\"hls\",kind=\"not_found\"} 4\n"));
    }
}
