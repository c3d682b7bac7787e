//! Every rate rule of the chat and its parameters, in one place. Callers only apply them.
//!
//! | rule | model | default | applied by |
//! |---|---|---|---|
//! | messages a user may post in a room | sliding window (`window.rs`, Lua twin `window.lua`): at most `messages` in any `window` | 2 per 1 s ([`RateLimit::default`]) | the room's ledger: [`crate::ledger::MemoryLedger`] in process, [`crate::redis_ledger::RedisLedger`] in Redis with the window's Lua twin, so every node shares one window per user |
//! | client frames a socket may send | token bucket (`frames`): `inbound_per_sec`, burst of [`BURST_SECONDS`]; warned once per run of refusals, closed after [`FLOOD_STRIKES`] in a row | 10/s ([`FRAMES_PER_SEC`]) | the socket's task, before parsing |
//!
//! The message limit is part of the room's rules (`ChatConfig::ledger.rate`) and shared by
//! every node in cluster mode; the frame budget protects one node from one socket and is
//! local to it. Slow mode is a moderator's setting, not a rate rule: it lives in the ledger.

mod frames;
mod window;

pub use frames::{BURST_SECONDS, FLOOD_STRIKES, FRAMES_PER_SEC};
pub(crate) use frames::{FrameBudget, Spend};
pub(crate) use window::LUA as WINDOW_LUA;
pub use window::{RateLimit, SlidingWindow};
