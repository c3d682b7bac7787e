//! The boundary between a protocol adapter and the server: who may publish, where frames go.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::frame::Frame;

/// The protocol a publication came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RTMP publish (OBS, ffmpeg, hardware encoders).
    Rtmp,
    /// SRT with an MPEG-TS payload.
    Srt,
    /// RTSP pulled from a camera.
    Rtsp,
}

impl Protocol {
    /// Lower-case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Srt => "srt",
            Protocol::Rtsp => "rtsp",
        }
    }
}

/// What a publisher asks for.
#[derive(Clone)]
pub enum PublishRequest {
    /// A pushed stream (RTMP, SRT) names its stream by its secret stream key.
    Key {
        /// RTMP or SRT.
        protocol: Protocol,
        /// The stream key as sent. Never log it.
        key: String,
        /// The publisher's address.
        peer: SocketAddr,
    },
    /// A pulled stream (RTSP) is configured on the stream; the server knows its id.
    Pull {
        /// The stream id.
        stream: String,
    },
}

impl fmt::Debug for PublishRequest {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishRequest::Key { protocol, peer, .. } => {
                write!(f, "Key({}, from {peer}, key: <redacted>)", protocol.as_str())
            }
            PublishRequest::Pull { stream } => write!(f, "Pull({stream})"),
        }
    }
}

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No stream has this key.
    #[error("unknown stream key")]
    BadKey,
    /// The stream exists but may not be published now (stopped, deleted, draining).
    #[error("the stream cannot be published now: {0}")]
    Unavailable(String),
}

/// The publication ended on the server's side (the key was rotated, the stream stopped, a
/// newer publisher took over): the adapter closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the publication was ended by the server")]
pub struct SinkClosed;

/// Where one publication's frames go. Dropping it ends the publication (the stream's reconnect
/// grace starts).
pub trait Sink: Send {
    /// Hand on one frame. Must not block for long (a bounded hand-off).
    fn push(&mut self, frame: Frame) -> Result<(), SinkClosed>;
    /// The stream id this sink publishes to (for logs).
    fn stream(&self) -> &str;
    /// Something about the source that its owner should see (an unsupported codec, broken
    /// input): shown in the stream's health. Does not end the publication.
    fn problem(&mut self, _message: String) {}
}

/// A boxed future, for the object-safe [`Gate`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides who may publish and opens their sink.
pub trait Gate: Send + Sync + 'static {
    /// Check the request (the stream key) and start the publication.
    fn open(&self, request: PublishRequest) -> BoxFuture<'_, Result<Box<dyn Sink>, Refusal>>;

    /// Check the request without starting anything (which would replace the stream's current
    /// publisher): whether `open` could refuse it for its key ([`Refusal::BadKey`]). A protocol
    /// that must admit a caller before it can `open` (SRT with a passphrase: the key exchange
    /// comes after the handshake) asks this first, so a wrong key still gets its code. The
    /// default knows nothing and lets it through to `open`.
    fn check(&self, request: &PublishRequest) -> BoxFuture<'_, Result<(), Refusal>> {
        let _ = request;
        Box::pin(std::future::ready(Ok(())))
    }
}
