//! Errors of the SFU core.

use thiserror::Error;

/// What can go wrong when setting up or changing a session.
#[derive(Debug, Error)]
pub enum SfuError {
    /// The SDP offer could not be parsed.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The SDP offer parsed but cannot be answered (no common codec, wrong direction...).
    #[error("offer not acceptable: {0}")]
    Unacceptable(String),
    /// A trickle-ICE fragment could not be parsed.
    #[error("malformed ICE fragment: {0}")]
    MalformedFragment(String),
    /// A session's trickled remote candidates would pass the cap.
    #[error("too many remote ICE candidates: at most {0} a session")]
    TooManyCandidates(usize),
    /// The session does not exist (anymore).
    #[error("unknown session")]
    UnknownSession,
    /// The server holds as many sessions as it takes.
    #[error("the server is full: at most {0} sessions")]
    ServerFull(usize),
    /// The client has as many sessions that have not connected yet as it may.
    #[error("too many sessions not connected yet from this address: at most {0}")]
    TooManyConnecting(usize),
    /// The worker that owns the session is gone or overloaded.
    #[error("media worker unavailable")]
    WorkerUnavailable,
}
