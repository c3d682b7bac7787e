//! `/metrics`: one Prometheus registry per scrape, on `prometheus-client`.
//!
//! # Where metrics live
//!
//! Each crate owns its counters and keeps them where they are bumped: relaxed atomics on paths
//! that already exist (an SFU worker after a send batch, a chat room after a flush, the origin
//! once per request). Nothing in this crate runs on those paths. When `/metrics` is scraped, each
//! owner takes a snapshot of its atomics and hands it over as a
//! [`Collector`](prometheus_client::collector::Collector) that writes its own families:
//!
//! | families | counted in | collector |
//! |---|---|---|
//! | `fanout_sfu_*` | `sfu/src/metrics.rs` (worker threads) | `sfu::MetricsSnapshot` (`sfu/src/exposition.rs`) |
//! | `fanout_streams_active`, `fanout_whep_viewers`, `fanout_stream_viewers`, `fanout_webhook_deliveries_total`, `fanout_api_rate_limited_total` | signaling's services (`state/`, `webhook/`, `rate_limiter.rs`) | `signaling/src/service_counts.rs` |
//! | `fanout_ingest_*` | the SFU's home worker of each live stream, asked at scrape time | `signaling/src/stream_health.rs` |
//! | `fanout_glass_to_glass_seconds` | player heartbeats | `signaling/src/player_latency.rs` |
//! | `fanout_chat_*` | `chat/src/stats.rs` (rooms and sockets) | `chat::ChatStats` (`chat/src/exposition.rs`) |
//! | `fanout_hls_*` | `bridge/hls/src/stats.rs` (origin router) | `hls::OriginStats` (`bridge/hls/src/exposition.rs`) |
//! | `fanout_errors_total{source,kind}` | signaling's `ApiError` (`source="api"`), chat's error frames (`"chat"`), the origin's refusals (`"hls"`) | one family here ([`ErrorSource`]), fed by every source |
//!
//! # Building an exposition
//!
//! [`Exposition`] is the registry of one scrape. Two places build one: signaling's `/metrics`
//! (`signaling/src/metrics.rs`: every role of `fanout serve`) and the chat listener's own
//! `/metrics` (`chat/src/server.rs`, for `fanout chat`).
//!
//! ```
//! use fanout_metrics::{ErrorSource, Exposition, family};
//! use prometheus_client::collector::Collector;
//! use prometheus_client::encoding::DescriptorEncoder;
//!
//! #[derive(Debug)]
//! struct Widgets(u64);
//!
//! impl Collector for Widgets {
//!     fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
//!         // Counter names go without `_total`: the encoder appends it.
//!         family::counter(&mut encoder, "widgets_made", "Widgets made.", self.0)
//!     }
//! }
//!
//! #[derive(Debug)]
//! struct WidgetErrors;
//!
//! impl ErrorSource for WidgetErrors {
//!     fn source(&self) -> &'static str {
//!         "widgets"
//!     }
//!     fn counts(&self) -> Vec<(&'static str, u64)> {
//!         vec![("jammed", 2)]
//!     }
//! }
//!
//! let mut exposition = Exposition::default();
//! exposition.add(Widgets(3)).errors(WidgetErrors);
//! let text = exposition.encode();
//! assert!(text.contains("\nwidgets_made_total 3\n"));
//! assert!(text.contains("fanout_errors_total{source=\"widgets\",kind=\"jammed\"} 2\n"));
//! ```
//!
//! The registry is built per scrape rather than once at start-up because part of what it
//! encodes is asked for asynchronously (each live stream's health comes from its SFU worker)
//! and a collector is synchronous: the handler gathers, then builds and encodes. Building costs
//! a few boxed snapshots, next to the text itself.
//!
//! # Format
//!
//! Prometheus text 0.0.4 ([`CONTENT_TYPE`]), the format the hand-written writers produced: no
//! OpenMetrics `# EOF`, counters named `*_total`. Histogram bounds are written the way Go's
//! client writes them (`le="5e-06"` below 1e-4), which is the same number: Prometheus 3
//! normalises `le` on ingestion, and `histogram_quantile` reads it as a float.

mod errors;
mod exposition;
pub mod family;
pub mod histogram;

pub use errors::ErrorSource;
pub use exposition::{CONTENT_TYPE, Exposition};
