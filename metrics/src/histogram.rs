//! Histograms whose buckets are kept the way the hot paths keep them: one relaxed atomic per
//! bucket, not cumulative, the open (`+Inf`) bucket last. The encoder makes them cumulative.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// One histogram's reading.
#[derive(Debug, Clone, Copy)]
pub struct Buckets<'a> {
    /// Upper bounds of the closed buckets, ascending.
    pub bounds: &'a [f64],
    /// One count per bound, then the open bucket's (`bounds.len() + 1` entries).
    pub counts: &'a [u64],
    /// Sum of the observed values.
    pub sum: f64,
}

impl Buckets<'_> {
    /// Writes the `_bucket`, `_sum` and `_count` samples of one series.
    pub fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        debug_assert_eq!(
            self.counts.len(),
            self.bounds.len() + 1,
            "one count per bound, then +Inf"
        );
        let closed: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
            .collect();
        let count = self.counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum, count, &closed, None)
    }
}

/// A histogram family with one unlabelled series.
pub fn histogram(encoder: &mut DescriptorEncoder, name: &str, help: &str, buckets: Buckets) -> fmt::Result {
    buckets.encode(encoder.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

/// A histogram family with one series per label set.
pub fn histograms<'a, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, Buckets<'a>)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, buckets) in series {
        buckets.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
