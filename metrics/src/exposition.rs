//! The registry of one scrape and its text encoding.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

use crate::errors::{ErrorSource, Errors};

/// The `Content-Type` of [`Exposition::encode`]'s text: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every family of one `/metrics` answer: the owners' collectors, in the order added, then
/// `fanout_errors_total` with every source's samples.
#[derive(Debug, Default)]
pub struct Exposition {
    registry: Registry,
    errors: Errors,
}

impl Exposition {
    /// Adds the families of one owner (a snapshot of its counters).
    pub fn add(&mut self, collector: impl Collector) -> &mut Self {
        self.registry.register_collector(Box::new(collector));
        self
    }

    /// Adds one source's samples of `fanout_errors_total`.
    pub fn errors(&mut self, source: impl ErrorSource) -> &mut Self {
        self.errors.push(Box::new(source));
        self
    }

    /// The exposition as Prometheus text 0.0.4 (see [`CONTENT_TYPE`]).
    pub fn encode(self) -> String {
        let Exposition { mut registry, errors } = self;
        // A family may be declared once per exposition, and the errors of every source share
        // one: it is written once, after the rest.
        registry.register_collector(Box::new(errors));
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &registry)
            .expect("collectors write integers and floats into a String, which cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use prometheus_client::encoding::DescriptorEncoder;

    use super::*;
    use crate::family;
    use crate::histogram::{self, Buckets};

    #[derive(Debug)]
    struct Source(&'static str, u64);

    impl ErrorSource for Source {
        fn source(&self) -> &'static str {
            self.0
        }
        fn counts(&self) -> Vec<(&'static str, u64)> {
            vec![("not_found", self.1), ("busy", 0)]
        }
    }

    #[derive(Debug)]
    struct Owner;

    impl Collector for Owner {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            family::counter(&mut encoder, "fanout_things", "Things.", 7)?;
            family::gauges(
                &mut encoder,
                "fanout_per_stream",
                "Per stream.",
                [([("stream", "a\"b")], 1.5)],
            )?;
            let buckets = Buckets {
                bounds: &[0.000005, 0.1, 1.0],
                counts: &[2, 0, 1, 4],
                sum: 9.25,
            };
            histogram::histogram(&mut encoder, "fanout_delay_seconds", "Delay.", buckets)
        }
    }

    #[test]
    fn one_errors_family_for_every_source_after_the_owners() {
        let mut e = Exposition::default();
        e.errors(Source("api", 3)).add(Owner).errors(Source("chat", 1));
        let text = e.encode();
        assert_eq!(
            text.matches("# TYPE fanout_errors_total counter\n").count(),
            1,
            "{text}"
        );
        let api = text.find("fanout_errors_total{source=\"api\",kind=\"not_found\"} 3\n");
        let chat = text.find("fanout_errors_total{source=\"chat\",kind=\"busy\"} 0\n");
        let owner = text.find("fanout_things_total 7\n");
        assert!(owner < api && api < chat, "{text}");
        assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
    }

    #[test]
    fn counters_get_total_histograms_are_cumulative_labels_escaped() {
        let mut e = Exposition::default();
        e.add(Owner);
        let text = e.encode();
        assert!(text.contains("# HELP fanout_things_total Things.\n# TYPE fanout_things_total counter\n"));
        assert!(
            text.contains("fanout_per_stream{stream=\"a\\\"b\"} 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("fanout_delay_seconds_bucket{le=\"5e-06\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("fanout_delay_seconds_bucket{le=\"0.1\"} 2\n"));
        assert!(text.contains("fanout_delay_seconds_bucket{le=\"1\"} 3\n"));
        assert!(text.contains("fanout_delay_seconds_bucket{le=\"+Inf\"} 7\n"));
        assert!(text.contains("fanout_delay_seconds_sum 9.25\nfanout_delay_seconds_count 7\n"));
        // An empty exposition still has its errors family (declared, no samples).
        let empty = Exposition::default().encode();
        assert_eq!(
            empty,
            "# HELP fanout_errors_total Errors answered, by where and kind.\n# TYPE fanout_errors_total counter\n"
        );
    }
}
