//! `fanout_errors_total{source,kind}`: one family that every part of a process feeds.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::family::counters;

/// A part of the process that answers errors: its `source` label and its counts by `kind`.
pub trait ErrorSource: fmt::Debug + Send + Sync + 'static {
    /// The `source` label (`api`, `chat`, `hls`).
    fn source(&self) -> &'static str;

    /// Errors so far by `kind`, every kind included (zeros too, so that a series exists
    /// before its first error and `rate()` sees it start).
    fn counts(&self) -> Vec<(&'static str, u64)>;
}

/// The sources of one exposition (see [`crate::Exposition::errors`]).
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<Box<dyn ErrorSource>>);

impl Errors {
    pub(crate) fn push(&mut self, source: Box<dyn ErrorSource>) {
        self.0.push(source);
    }
}

impl Collector for Errors {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let samples = self.0.iter().flat_map(|source| {
            let counts = source.counts().into_iter();
            counts.map(|(kind, n)| ([("source", source.source()), ("kind", kind)], n))
        });
        counters(
            &mut encoder,
            "fanout_errors",
            "Errors answered, by where and kind.",
            samples,
        )
    }
}
