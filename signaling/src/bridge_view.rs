//! What signaling shows of the LL-HLS bridge (which it does not depend on): each stream's
//! bridge health in the streams API, and the bridge's families in `/metrics`.

use std::fmt;

use fanout_metrics::ErrorSource;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde_json::Value;

/// The bridge as the binary wires it in.
pub trait BridgeView: std::fmt::Debug + Send + Sync + 'static {
    /// Stream `stream`'s bridge (state, encoder, renditions, restarts, last error), `None`
    /// when it has none.
    fn health(&self, stream: &str) -> Option<Value>;
    /// The bridge's families for one scrape, and its part of `fanout_errors_total`.
    fn metrics(&self) -> (Box<dyn Collector>, Box<dyn ErrorSource>);
}

/// A boxed collector as a collector.
#[derive(Debug)]
pub(crate) struct Boxed(pub(crate) Box<dyn Collector>);

impl Collector for Boxed {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        self.0.encode(encoder)
    }
}

/// A boxed error source as an error source.
#[derive(Debug)]
pub(crate) struct BoxedErrors(pub(crate) Box<dyn ErrorSource>);

impl ErrorSource for BoxedErrors {
    fn source(&self) -> &'static str {
        self.0.source()
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        self.0.counts()
    }
}
