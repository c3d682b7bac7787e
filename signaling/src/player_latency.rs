//! Glass-to-glass latency as players report it in their heartbeats, as a histogram
//! (`fanout_glass_to_glass_seconds{protocol}` in `/metrics`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use fanout_metrics::histogram::{Buckets, histograms};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// Upper bounds of the player-latency buckets, in seconds (the last bucket is open).
pub const LATENCY_BUCKETS_S: [f64; 13] = [
    0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];

/// How a player watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Hls,
    WebRtc,
}

impl Protocol {
    const ALL: [Protocol; 2] = [Protocol::Hls, Protocol::WebRtc];

    pub(crate) fn parse(s: &str) -> Option<Protocol> {
        match s {
            "hls" => Some(Protocol::Hls),
            "webrtc" => Some(Protocol::WebRtc),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Protocol::Hls => "hls",
            Protocol::WebRtc => "webrtc",
        }
    }
}

/// Glass-to-glass latency as players report it in heartbeats (`latencyMs`), per protocol.
#[derive(Debug, Default)]
pub(crate) struct PlayerLatency {
    /// Per protocol: per bucket counts (not cumulative, last slot open), then the sum in µs.
    counts: [[AtomicU64; LATENCY_BUCKETS_S.len() + 1]; 2],
    sum_us: [AtomicU64; 2],
}

impl PlayerLatency {
    pub(crate) fn observe(&self, protocol: Protocol, seconds: f64) {
        let i = LATENCY_BUCKETS_S.partition_point(|&b| b < seconds);
        self.counts[protocol as usize][i].fetch_add(1, Ordering::Relaxed);
        self.sum_us[protocol as usize].fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Read at scrape time: the heartbeat handler only ever adds.
impl Collector for PlayerLatency {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let readings = Protocol::ALL.map(|p| {
            let counts = self.counts[p as usize].each_ref().map(load);
            (p, counts, load(&self.sum_us[p as usize]) as f64 / 1e6)
        });
        histograms(
            &mut e,
            "fanout_glass_to_glass_seconds",
            "Glass-to-glass latency players report with their heartbeats: the wall-clock age of the \
             frame on screen (HLS: from its PROGRAM-DATE-TIME; WebRTC: from the server's sender \
             reports, so without the publisher's uplink).",
            readings.iter().map(|(p, counts, sum)| {
                let buckets = Buckets {
                    bounds: &LATENCY_BUCKETS_S,
                    counts,
                    sum: *sum,
                };
                ([("protocol", p.as_str())], buckets)
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_latency_is_a_histogram_per_protocol() {
        let l = PlayerLatency::default();
        l.observe(Protocol::Hls, 0.95);
        l.observe(Protocol::Hls, 1.1);
        l.observe(Protocol::WebRtc, 0.08);
        let mut exposition = fanout_metrics::Exposition::default();
        exposition.add(l);
        let out = exposition.encode();
        assert!(
            out.contains("# TYPE fanout_glass_to_glass_seconds histogram\n"),
            "{out}"
        );
        let name = "fanout_glass_to_glass_seconds";
        assert!(
            out.contains(&format!("{name}_bucket{{protocol=\"hls\",le=\"0.75\"}} 0\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{name}_bucket{{protocol=\"hls\",le=\"1\"}} 1\n")));
        assert!(out.contains(&format!("{name}_bucket{{protocol=\"hls\",le=\"1.25\"}} 2\n")));
        assert!(out.contains(&format!("{name}_count{{protocol=\"hls\"}} 2\n")));
        assert!(out.contains(&format!("{name}_sum{{protocol=\"hls\"}} 2.05\n")));
        assert!(out.contains(&format!("{name}_bucket{{protocol=\"webrtc\",le=\"0.1\"}} 1\n")));
    }
}
