//! The SFU media driver: sockets, threads and the handle the control plane talks to.
//!
//! [`Sfu::start`] binds one UDP socket per worker and advertised address (ports
//! `udp_port`, `udp_port + 1`, ...) and runs one thread per worker. Each thread owns a
//! [`sfu_core::Worker`] and is the only thing that touches it: it reads datagrams, feeds
//! them in, sends what comes out, and passes packets and keyframe requests to the other
//! workers through bounded queues (one wake-up per batch, never a lock on the media path).
//!
//! The control plane (signaling) holds an [`SfuHandle`]: it builds a session from an SDP
//! offer on its own thread, hands it to a worker, and hears about sessions through
//! [`SfuHandle::events`]. The LL-HLS bridge taps a room with [`SfuHandle::tap`]: an
//! in-process subscriber without a WebRTC session, fed by the room's home worker.
//!
//! Workers count packets, bytes and forwarding delays in relaxed atomics (`metrics.rs`);
//! [`SfuHandle::metrics`] reads them into a [`MetricsSnapshot`], which is the `Collector` of
//! the `fanout_sfu_*` families of `/metrics` (`exposition.rs`; see the `fanout-metrics` crate).
//!
//! **Overload.** Datagrams are read with the kernel's receive time (`recv_stamped.rs`), so the
//! age of media includes its wait in the socket buffer while a worker is busy or not scheduled.
//! Media past its age budget is skipped ([`sfu_core::VIDEO_AGE_BUDGET`]: viewers restart at the
//! next keyframe) rather than queued. Each worker reports its [`Lag`] once a second; new viewers
//! go to the least loaded worker that keeps up, and `/readyz`, `/metrics` and the log say
//! which workers do not.

mod addresses;
mod batch_send;
mod exposition;
mod handle;
mod metrics;
mod recv_stamped;
mod sessions;
mod source;
mod tap;
mod worker_thread;

pub use addresses::candidate_ips;
pub use handle::{Sfu, SfuConfig, SfuHandle};
pub use metrics::{DELAY_BUCKETS_US, Lag, MetricsSnapshot};
pub use sessions::SessionLimits;
pub use sfu_core::str0m;
pub use sfu_core::str0m::format::{Codec, PayloadParams};
pub use sfu_core::str0m::media::MediaKind;
pub use sfu_core::{
    CodecKind, ESTIMATE_BUCKETS_BPS, HealthReport, IceFragment, LayerChoice, LayerState, RoomId, SessionId,
    SessionKind, SfuError, SfuEvent, SourcePacket, TapPacket, TrackHealth, WorkerStats, is_keyframe,
};
pub use source::RoomSource;
pub use tap::RoomTap;
