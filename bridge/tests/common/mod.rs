//! Shared by the bridge's integration tests: a real RTP source and a recording sink.
#![allow(dead_code, reason = "each test file uses a part of this shared module")]

pub mod av1_packetizer;
pub mod recording;
pub mod rtp_source;
