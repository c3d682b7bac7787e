//! The bridge's families of `/metrics` (`fanout_bridge_*`) and its part of
//! `fanout_errors_total`, written from a [`BridgeMetrics`] reading.

use std::fmt;

use fanout_metrics::ErrorSource;
use fanout_metrics::family::{counter, gauge, gauges};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// The bridges' counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeMetrics {
    /// The encoder (`x264`, `nvenc`, `vaapi`).
    pub encoder: &'static str,
    /// Where frames are decoded and scaled (`cpu`, `gpu`).
    pub decode: &'static str,
    /// Streams bridged now.
    pub streams: u64,
    /// Transcoder starts, first ones and restarts.
    pub starts: u64,
    /// Restarts after a pipeline error.
    pub faults: u64,
    /// Restarts after the publisher was away or changed codec.
    pub resumes: u64,
    /// Times the slate took over a stream.
    pub slates: u64,
}

impl Collector for BridgeMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        gauges(
            &mut e,
            "fanout_bridge_encoder_info",
            "The LL-HLS transcoder's encoder and where it decodes and scales (chosen at start).",
            [([("encoder", self.encoder), ("decode", self.decode)], 1u64)],
        )?;
        gauge(
            &mut e,
            "fanout_bridge_streams",
            "Live streams bridged to LL-HLS.",
            self.streams,
        )?;
        counter(
            &mut e,
            "fanout_bridge_transcoder_starts",
            "Transcoder runs started (first starts and restarts).",
            self.starts,
        )?;
        counter(
            &mut e,
            "fanout_bridge_faults",
            "Transcoder runs restarted after a pipeline error.",
            self.faults,
        )?;
        counter(
            &mut e,
            "fanout_bridge_resumes",
            "Transcoder runs restarted after the publisher was away or changed codec.",
            self.resumes,
        )?;
        counter(
            &mut e,
            "fanout_bridge_slates",
            "Times the slate took over a stream whose publisher was away.",
            self.slates,
        )
    }
}

/// `fanout_errors_total{source="bridge"}`: pipeline faults.
impl ErrorSource for BridgeMetrics {
    fn source(&self) -> &'static str {
        "bridge"
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![("pipeline", self.faults)]
    }
}

#[cfg(test)]
mod tests {
    use fanout_metrics::Exposition;

    use super::*;

    #[test]
    fn families_name_the_encoder_and_count_runs() {
        let m = BridgeMetrics {
            encoder: "x264",
            decode: "gpu",
            streams: 2,
            starts: 5,
            faults: 1,
            resumes: 2,
            slates: 3,
        };
        let mut exposition = Exposition::default();
        exposition.add(m.clone()).errors(m);
        let text = exposition.encode();
        for line in [
            "fanout_bridge_encoder_info{encoder=\"x264\",decode=\"gpu\"} 1\n",
            "fanout_bridge_streams 2\n",
            "fanout_bridge_transcoder_starts_total 5\n",
            "fanout_bridge_faults_total 1\n",
            "fanout_bridge_resumes_total 2\n",
            "fanout_bridge_slates_total 3\n",
            "fanout_errors_total{source=\"bridge\",kind=\"pipeline\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
