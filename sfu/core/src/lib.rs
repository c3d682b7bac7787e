//! Sans-IO SFU core.
//!
//! This crate holds every decision an SFU makes about media and nothing that touches the
//! network or the clock: it has no sockets, no threads, no tokio, and never reads the time.
//! The current time is passed in with each input.
//!
//! # Model
//!
//! A [`Worker`] owns a set of WebRTC sessions (each a str0m [`str0m::Rtc`] in RTP mode) and
//! the worker-local view of every room those sessions belong to. A room has one *home*
//! worker, which hosts its publisher; its subscribers may live on any worker. The publisher's
//! RTP packets become [`MediaPacket`]s (shared as `Arc`) that the home worker forwards to its
//! own subscribers and hands once to every other worker that has subscribers in the room
//! ([`Output::Peer`]). Each subscriber has one [`Forwarder`] per track, which picks the
//! packets of its current simulcast layer and rewrites sequence numbers and timestamps so
//! the viewer sees one continuous stream across layer switches and publisher reconnects.
//! An [`Allocator`] per subscriber chooses the layer from the bandwidth estimate (TWCC),
//! falling fast and climbing only after sustained headroom.
//!
//! # Driving it
//!
//! ```text
//! loop {
//!     worker.handle_input(input);           // datagram, command, peer message, timeout
//!     loop {
//!         match worker.poll_output() {
//!             Transmit(t) => send t,
//!             Peer(w, m) => queue m to worker w,
//!             Event(e) => tell the control plane,
//!             Timeout(t) => { wait until t or the next input; break }
//!         }
//!     }
//! }
//! ```
//!
//! Bad input (a datagram from nobody, a packet str0m rejects) is logged and dropped inside
//! the worker; `handle_input` has nothing to return. `worker/tests/` drives a worker this way
//! in simulated time against in-memory str0m peers.
//!
//! The `sfu` crate is that loop, with UDP sockets and one thread per core.

mod allocator;
mod codec;
mod error;
mod forwarder;
mod gop_cache;
mod ice_fragment;
mod ids;
mod ingest_health;
mod keyframes;
mod layer_stats;
mod packet;
mod publisher;
mod room;
mod session;
mod source;
mod subscriber;
mod tap;
mod worker;

pub use allocator::{Allocator, AllocatorConfig, LayerChoice};
pub use codec::{CodecKind, is_keyframe};
pub use error::SfuError;
pub use forwarder::{Forwarded, Forwarder, Late};
pub use gop_cache::GopCache;
pub use ice_fragment::IceFragment;
pub use ids::{RoomId, SessionId, WorkerId};
pub use ingest_health::{HealthReport, IngestHealth, TrackHealth};
pub use keyframes::KeyframeThrottle;
pub use layer_stats::LayerStats;
pub use packet::MediaPacket;
pub use room::home_worker;
pub use session::{SessionConfig, SessionKind, SessionSetup, build_session};
pub use source::{KeyframeSignal, SourcePacket};
pub use tap::{Tap, TapId, TapOutcome, TapPacket, TapQueue};
pub use worker::{
    AUDIO_AGE_BUDGET, BURST_ALLOWANCE, Command, Datagram, ESTIMATE_BUCKETS_BPS, Input, LayerState, Output,
    PeerMessage, Reply, SfuEvent, Transmit, VIDEO_AGE_BUDGET, Worker, WorkerConfig, WorkerStats,
};

/// Re-export of the WebRTC stack the core is built on.
pub use str0m;
