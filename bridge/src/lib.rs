//! Protocol bridges around the SFU and the LL-HLS packager.
//!
//! Today: the built-in [`test_source`], a live GStreamer pipeline that feeds the packager
//! ([`hls::MediaSink`]) a multi-rendition H.264 + AAC ladder with the wall clock burnt into
//! the picture, as text and as a machine-readable [`test_source::clock_code`] that a
//! glass-to-glass benchmark reads back from a player's frames; and the [`slate`], which puts
//! that source on a stream's renditions while its live producer is quiet.
//!
//! GStreamer stays at the edge: the pipeline is built element by element in code, encoded
//! access units leave through appsinks, one thread owns the sink, one thread watches the bus.
//! `docs/bridge.md` has the pipeline diagram and the clock code layout.

pub mod encoder;
mod error;
pub mod ingest;
pub mod ladder;
pub mod live;
mod media;
pub mod slate;
pub mod test_source;
pub mod transcode;

pub use error::Error;
