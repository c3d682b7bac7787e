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

mod app;
mod auth;
mod chat_link;
mod db;
mod error;
mod health;
mod hls_access;
mod lifecycle;
mod metrics;
mod resources;
mod streams;
mod turn;
mod viewer_auth;
mod viewers;
mod whep;
mod whip;

pub use app::{AppState, IngestUrls, SignalConfig, router};
pub use auth::new_secret;
pub use chat_link::ChatLink;
pub use db::{Db, StreamMeta, Visibility};
pub use error::ApiError;
pub use hls_access::guard_hls;
pub use lifecycle::{Lifecycle, Status};
pub use turn::{TurnConfig, TurnCredentials};
pub use viewer_auth::{HLS_EXPIRY_STEP_SECS, ViewerAuth, ViewerClaims};
pub use viewers::mark_hls_request;
