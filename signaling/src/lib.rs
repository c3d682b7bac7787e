//! HTTP signaling: the streams API, WHIP and WHEP resources, and the web pages.
//!
//! # Model
//!
//! A *stream* is a row in SQLite (id, title, hashed key, status). Publishing to it over WHIP
//! creates a publisher session in the SFU room named by the stream id; watching it over
//! WHEP creates a subscriber session there. Each WHIP/WHEP session is an HTTP *resource*
//! (`Location`) that the client PATCHes (trickle ICE, ICE restart) and DELETEs.
//!
//! The stream's lifecycle (created -> live -> reconnecting -> ended) is a pure state
//! machine ([`Lifecycle`]) driven by SFU session events and a grace timer: a publisher
//! that comes back with the same key within the grace period resumes the same stream, and
//! viewers keep their sessions through it.
//!
//! Viewer counts (`audience` on the stream resource) come from the [`audience`] crate: WHEP
//! sessions are marked when they connect and every re-mark period while they stay, HLS
//! players by the `sid` on their playlist requests ([`mark_hls_request`], a middleware for
//! the origin's routes) or by `POST /api/v1/streams/{id}/heartbeat`. Peak and total views
//! are stored in SQLite when the stream ends.
//!
//! # Operations
//!
//! Lifecycle changes are POSTed to the operator's webhooks, signed (see
//! [`verify_signature`]); the API and session creation are rate limited per client;
//! `/readyz` says whether new sessions are welcome, and [`AppState::drain`] shuts down
//! without cutting viewers off mid-sentence. `/metrics` (`metrics.rs`) is where the process's
//! one Prometheus registry is built at each scrape, from the SFU's, chat's and origin's
//! counters and signaling's own (`service_counts.rs`, `stream_health.rs`,
//! `player_latency.rs`, the API errors in `error.rs`); the `fanout-metrics` crate lists
//! which part owns which families.
//!
//! # State and threads
//!
//! [`AppState`] is a set of narrow services that know no routes (`state/`): streams and their
//! lifecycles, viewers, WHIP/WHEP resources, private streams, the drain, webhooks. Each route
//! module (`streams`, `whip`, `whep`, `viewers`, `metrics`, ...) has its `router()` and uses
//! the services it needs; [`router`] merges them. Locks guard memory only and are let go
//! before any I/O. SQLite runs on a thread of its own ([`Database`]) that async callers
//! await. A lifecycle change is decided under the streams' lock and queued in order to one
//! task, which stores it and then tells webhooks and chat. SFU events arrive on a tokio task
//! that follows the SFU's broadcast, never on a media worker.

mod app;
mod auth;
mod bridge_view;
mod browse;
mod chat_guest;
mod chat_link;
mod config;
mod db;
mod drain;
mod endpoint;
mod error;
mod health;
mod hls_access;
mod ice_servers;
mod ingest_gate;
mod lifecycle;
mod metrics;
mod player_latency;
mod pulls;
mod rate_limit;
mod rate_limiter;
mod service_counts;
mod state;
mod stream_event;
mod stream_fields;
mod stream_health;
mod stream_json;
mod streams;
mod turn;
mod viewer_auth;
mod viewers;
mod webhook;
mod whep;
mod whip;

pub use app::router;
pub use auth::new_secret;
pub use bridge_view::BridgeView;
pub use chat_link::ChatLink;
pub use config::{IngestUrls, SignalConfig};
pub use db::{Database, Db, DbError, StreamMeta, StreamRow, Visibility};
pub use error::ApiError;
pub use hls_access::guard_hls;
pub use ingest_gate::{IngestGate, RoomSources};
pub use lifecycle::{Lifecycle, Status};
pub use rate_limiter::RateLimit;
pub use state::AppState;
pub use stream_event::StreamEvent;
pub use turn::{TurnConfig, TurnCredentials};
pub use viewer_auth::{HLS_EXPIRY_STEP_SECS, ViewerAuth, ViewerClaims};
pub use viewers::mark_hls_request;
pub use webhook::{EventKind, SignatureError, WebhookConfig, WebhookError, verify_signature};
