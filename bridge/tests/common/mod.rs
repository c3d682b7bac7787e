//! Shared by the bridge's integration tests: a real RTP source and a recording sink.

pub mod recording;
pub mod rtp_source;
