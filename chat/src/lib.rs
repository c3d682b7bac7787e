//! Fanout chat: a WebSocket chat service per stream (`ws://host:8081/v1/chat/{streamId}`).
//!
//! # Model
//!
//! ```text
//! socket task ──parse, size/flood check, auth──▶ room driver (one task per room per node)
//!                                                 │  Room: pure state machine (filters, roles)
//!                                                 │  Ledger: bans, modes, rate, ids, history
//!                                                 │          memory (embedded) | Redis script
//!                                                 ▼
//!                                      bus: in-process | Redis pub/sub `chat:<room>`
//!                                                 │  (each node subscribed once per room)
//!                                                 ▼
//!                    room driver: coalesce for `batch_window`, render once, broadcast ring
//!                                                 │  (bounded: a lagging socket is closed)
//!                                                 ▼
//!                                          every socket task ──▶ WebSocket
//! ```
//!
//! - [`room::Room`] is sans-IO: feed it [`room::Input`]s with the time, drain
//!   [`room::Output`]s. It decides *what* should happen (reply, admit a draft, moderate, read
//!   history); the driver does it.
//! - [`ledger::MemoryLedger`] (embedded) and [`redis_ledger::RedisLedger`] (cluster) hold the
//!   state that must be shared between nodes and apply the same rules; the Redis one runs them
//!   in one Lua script per message, which also stores recent history and publishes.
//! - [`history::Archive`] keeps every message in SQLite for replay by stream time, and the
//!   embedded ledger's bans and modes across restarts.
//! - [`socket`] is the thin WebSocket adapter; [`server`] wires it into axum.
//! - [`viewers`]: an optional hook that hears of every socket as a viewer of its stream, on
//!   join and periodically (viewer counts across WebRTC, HLS and chat).
//!
//! # Driving it
//!
//! ```no_run
//! # async fn run() -> Result<(), chat::ChatError> {
//! let config = chat::ChatConfig {
//!     addr: "127.0.0.1:0".parse().expect("addr"),
//!     jwt: chat::JwtConfig::hs256(b"secret".to_vec()),
//!     ..Default::default()
//! };
//! let handle = chat::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! println!("chat on {}", handle.local_addr());
//! handle.wait().await
//! # }
//! ```
//!
//! The wire protocol is described in `docs/chat.md` and [`protocol`].

pub mod auth;
pub mod bus;
mod driver;
pub mod filters;
pub mod history;
pub mod ledger;
pub mod protocol;
pub mod rate_limit;
pub mod redis_ledger;
pub mod room;
pub mod server;
pub mod socket;
pub mod stats;
pub mod viewers;

pub use auth::{AuthError, Identity, JwtConfig, Role, Verifier, mint_guest_token, mint_token};
pub use server::{ChatConfig, ChatError, ChatHandle, ChatState, router, serve};
pub use stats::ChatStats;
pub use viewers::ViewerMarks;
