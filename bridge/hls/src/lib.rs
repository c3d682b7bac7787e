//! LL-HLS packager and origin.
//!
//! # The model
//!
//! ```text
//! producer ──MediaSink──▶ StreamSink ──▶ Packager ──events──▶ Rendition records ──snapshot──▶ router
//! (GStreamer  start/push/   (one per     (pure: cuts     (pure: live window,       (watch      (axum,
//!  thread)    finish)        stream)      parts and       DVR index, storage)       channel)    /hls/…)
//!                                         segments)                 │
//!                                                                   └──▶ disk writer thread
//! ```
//!
//! * **Input** ([`media`]): a producer announces a source's tracks ([`TrackConfig`]: H.264
//!   with SPS/PPS, AAC with its AudioSpecificConfig) and a wall-clock anchor, then pushes
//!   [`AccessUnit`]s in decode order. A second `start` is a source change; `finish` ends.
//! * **Packaging** ([`packager`]): each track is a rendition (`720p`, `480p`, …, `audio`) with
//!   its own CMAF init segment ([`init_segment`]) and `moof`/`mdat` fragments ([`fragment`]).
//!   Parts are ~200 ms (a whole number of video frames), segments ~2 s, cut on keyframes; a
//!   segment is the concatenation of its parts. The audio follows the first video rung's cuts.
//! * **Records** ([`rendition`]): each rendition keeps its live window in memory (segments
//!   and their parts, which share one buffer), the DVR index, its init segments, and tells
//!   the disk writer what to store and delete.
//! * **Playlists** ([`playlist`], [`multivariant`]): pure writers (`write_to<W: Write>`) for
//!   the LL-HLS live playlist, the DVR and VOD playlists and the multivariant playlist.
//! * **Origin** ([`Origin`], [`router()`]): a registry of streams and the axum routes that serve
//!   them, with blocking playlist reload ([`reload`]) woken by the stream's publications.
//!
//! # Driving it
//!
//! ```
//! use std::time::SystemTime;
//! use hls::{MediaSink, Origin, OriginConfig, StreamConfig};
//!
//! # fn main() -> Result<(), hls::OriginError> {
//! // Once, at start-up: the origin, and its routes merged into the HTTP listener.
//! let origin = Origin::new(OriginConfig { data_dir: None, ..OriginConfig::default() })?;
//! let app: axum::Router = axum::Router::new().merge(hls::router(origin.clone()));
//!
//! // Per stream: a sink for the producer (it is Send; a Box<dyn MediaSink> if need be).
//! let mut sink = origin.create_stream("demo", StreamConfig::default())?;
//! sink.start(Vec::new(), SystemTime::now()); // the source's tracks, then push(..) per frame
//! sink.finish(); // or drop the sink
//! assert!(origin.stream("demo").is_some_and(|s| s.is_ended()));
//! # drop(app);
//! # Ok(())
//! # }
//! ```
//!
//! The router counts requests, bytes and refusals ([`stats`]); [`Origin::stats`] reads them
//! into an [`OriginStats`], the collector of the `fanout_hls_*` families of `/metrics` (see the
//! `fanout-metrics` crate).
//!
//! `docs/llhls.md` describes the URL layout, cache headers, blocking semantics and settings.

pub mod config;
mod disk;
mod exposition;
pub mod fragment;
pub mod init_segment;
pub mod media;
pub mod multivariant;
pub mod origin;
pub mod packager;
pub mod playlist;
pub mod reload;
pub mod rendition;
pub mod request;
pub mod resource;
pub mod router;
pub mod segment;
mod segmenter;
pub mod stats;
pub mod stream;
pub mod track;

pub use config::{OriginConfig, StreamConfig};
pub use media::{AccessUnit, MediaSink, TrackConfig};
pub use origin::{Origin, OriginError};
pub use router::router;
pub use stats::OriginStats;
pub use stream::{StreamHandle, StreamSink, StreamView};
