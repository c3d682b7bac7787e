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
//!        room driver: coalesce for `batch_window`, render and encode once; fan-out shards
//!        (≤ 1,024 sockets each, in parallel) write the same bytes into every local socket
//!        with a non-blocking write (no task woken per socket)
//!                                                 │  would block: the socket's bounded outbox,
//!                                                 ▼  drained by its task; overflow: closed
//!                                          every socket ──▶ WebSocket
//! ```
//!
//! - [`room::Room`] is sans-IO: feed it [`room::Input`]s with the time, drain
//!   [`room::Output`]s. It decides *what* should happen (reply, admit a draft, moderate, read
//!   history); the driver does it.
//! - [`ledger::MemoryLedger`] (embedded) and [`redis_ledger::RedisLedger`] (cluster) hold the
//!   state that must be shared between nodes and apply the same rules; the Redis one runs them
//!   in one Lua script per message, which also stores recent history and publishes.
//! - [`rate_limit`] owns every rate rule and its parameters: the per-user message window
//!   (which both ledgers apply, the Redis one through the window's Lua twin) and the
//!   per-socket frame budget.
//! - [`history::Archive`] keeps every message in SQLite for replay by stream time, and the
//!   embedded ledger's bans and modes across restarts.
//! - [`socket`] is each upgraded TCP stream's write side and bounded outbox; rooms write into
//!   it directly. Its task (`connection`) reads client frames (decoded by `wire`, RFC 6455
//!   framing), spends its frame budget ([`rate_limit`]) and drains the outbox.
//!   [`server`] accepts HTTP/1.1 connections itself so that an upgraded socket comes back as
//!   the bare stream, and routes the rest (replay, metrics) through axum.
//! - The node (`node`) is what a process's rooms and sockets share: [`config::ChatConfig`],
//!   verifier, bus, ledger backend, archive, counters and the registry of loaded rooms. It
//!   knows a room only by its command queue (`command`), so the modules form no cycle:
//!   `server` → `connection` → `driver` → `fanout` → `node` → `command` → `socket`.
//! - [`stats`]: the node's counters (relaxed atomics on paths that already exist). A reading,
//!   [`ChatStats`], writes the `fanout_chat_*` families and the chat's part of
//!   `fanout_errors_total` (`exposition`, on the `fanout-metrics` crate) for `fanout serve`'s
//!   `/metrics` and the chat listener's own.
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
mod command;
pub mod config;
mod connection;
mod driver;
mod exposition;
mod fanout;
pub mod filters;
mod handshake;
pub mod history;
pub mod ledger;
mod node;
pub mod protocol;
pub mod rate_limit;
pub mod redis_ledger;
pub mod room;
pub mod server;
pub mod socket;
pub mod stats;
pub mod viewers;
mod wire;

pub use auth::{AuthError, Identity, JwtConfig, Role, Verifier, mint_guest_token, mint_token};
pub use config::ChatConfig;
pub use server::{ChatError, ChatHandle, ChatState, router, serve};
pub use stats::ChatStats;
pub use viewers::ViewerMarks;
