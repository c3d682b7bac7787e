//! Viewer counts: how many distinct viewers watch a stream now, the most there were at
//! once, and how many watched in all.
//!
//! # Model
//!
//! A viewer is an opaque id (a WHEP session, the session id an HLS player carries, a chat
//! connection) that is *marked* on a stream at a time: when it arrives, and again every
//! [`Window::remark_every`] while it stays. Marks go into HyperLogLog sketches
//! ([`HyperLogLog`]: 16 KiB, about 0.8 % standard error, mergeable), so a million viewers cost
//! the same memory as ten and re-marking the same viewer costs nothing.
//!
//! ```text
//!            seen(stream, id, now)
//!                 │
//!                 ├──▶ bucket ⌊now / (window/2)⌋ sketch ─┐ union of this bucket and the
//!                 │                                      ├▶ previous one = current ──▶ peak = max
//!                 │         previous bucket sketch ──────┘
//!                 └──▶ lifetime sketch ──▶ total views
//! ```
//!
//! - **current**: the union of the sketches of the bucket `now` falls in and the one before.
//!   A viewer that stops being marked drops out at the end of the bucket after its last
//!   mark: after at least half the window and at most the whole window (2 minutes by default,
//!   with per-minute buckets). Older buckets are dropped, so memory is bounded.
//! - **peak**: the largest current count computed (each read and each periodic sweep
//!   computes one).
//! - **total**: the lifetime sketch: distinct viewers ever seen.
//! - **surviving a restart**: in process, the lifetime sketch and the peak of a watched
//!   stream are an [`AudienceRecord`] that the service stores (signaling: SQLite, at every
//!   sweep where they moved) and folds back in after a restart, so a viewer seen on both
//!   sides of the restart counts once. In Redis they live in Redis.
//!
//! # Driving it
//!
//! [`ViewerCounter`] is the sans-IO core: no clock, no I/O; the time is passed in, so tests
//! run in simulated time. [`Audience`] is the handle services hold: [`Audience::InProcess`]
//! wraps a counter (the embedded default), [`Audience::Redis`] keeps the same sketches in
//! Redis with PFADD / PFCOUNT so that every node counts into the same numbers
//! ([`redis_store`] lists the keys).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use audience::{ViewerCounter, Window};
//!
//! let mut counter = ViewerCounter::new(Window::default());
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! counter.seen("stream1", "viewer-a", t0);
//! counter.seen("stream1", "viewer-b", t0);
//! counter.seen("stream1", "viewer-a", t0 + Duration::from_secs(30));
//! assert_eq!(counter.current("stream1", t0 + Duration::from_secs(30)), 2);
//! assert_eq!(counter.current("stream1", t0 + Duration::from_secs(300)), 0);
//! assert_eq!(counter.peak("stream1"), 2);
//! assert_eq!(counter.total("stream1"), 2);
//! ```

mod backend;
mod counter;
pub mod hll;
pub mod redis_store;
mod window;

pub use backend::Audience;
pub use counter::{AudienceRecord, AudienceStats, ViewerCounter};
pub use hll::HyperLogLog;
pub use redis_store::{RedisStore, RedisStoreError};
pub use window::Window;
