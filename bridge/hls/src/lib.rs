//! LL-HLS packager and origin.
//!
//! Encoded access units (H.264 and AAC, see [`media`]) go in through a [`MediaSink`]; CMAF
//! init segments, ~200 ms parts and ~2 s segments come out, described by LL-HLS playlists and
//! served by the origin.

pub mod config;
mod disk;
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
pub mod stream;
pub mod track;

pub use config::{OriginConfig, StreamConfig};
pub use media::{AccessUnit, MediaSink, TrackConfig};
pub use origin::{Origin, OriginError};
pub use router::router;
pub use stream::{StreamHandle, StreamSink, StreamView};
