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
//! without cutting viewers off mid-sentence.

mod app;
mod auth;
mod chat_link;
mod db;
mod drain;
mod error;
mod health;
mod hls_access;
mod lifecycle;
mod metrics;
mod rate_limit;
mod resources;
mod stream_health;
mod streams;
mod token_bucket;
mod turn;
mod viewer_auth;
mod viewers;
mod webhook;
mod whep;
mod whip;

pub use app::{AppState, IngestUrls, SignalConfig, router};
pub use auth::new_secret;
pub use chat_link::ChatLink;
pub use db::{Db, StreamMeta, Visibility};
pub use error::ApiError;
pub use hls_access::guard_hls;
pub use lifecycle::{Lifecycle, Status};
pub use token_bucket::RateLimit;
pub use turn::{TurnConfig, TurnCredentials};
pub use viewer_auth::{HLS_EXPIRY_STEP_SECS, ViewerAuth, ViewerClaims};
pub use viewers::mark_hls_request;
pub use webhook::{EventKind, SignatureError, WebhookConfig, WebhookError, verify_signature};
