//! Counters of one chat node, for Prometheus: sockets, rooms, messages in, fan-out frames and
//! socket writes out, error frames by code, sockets closed as slow consumers.
//!
//! Updated with relaxed atomics on the paths that already exist (a socket joining, a room
//! flushing, a socket flushing), so counting costs no extra wake-up or lock. Read with
//! [`crate::ChatState::stats`]; the reading is the collector of the `fanout_chat_*` families
//! (and the chat's part of `fanout_errors_total`) that `fanout serve`'s `/metrics` and the
//! chat listener's own `/metrics` both serve (`exposition.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::ErrorCode;

/// Live counters (one per node).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    sockets: AtomicU64,
    sockets_total: AtomicU64,
    messages: AtomicU64,
    fanout_frames: AtomicU64,
    socket_writes: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Stats {
    pub fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::Relaxed);
        self.sockets_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn socket_closed(&self) {
        self.sockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// A message admitted by the room (it will be fanned out on every node).
    pub fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A room wrote one fan-out frame to its sockets.
    pub fn fanout_frame(&self) {
        self.fanout_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` writes (or queued writes) to single sockets: one per socket per fan-out, however
    /// many frames it carries, and one per reply.
    pub fn socket_writes(&self, n: u64) {
        self.socket_writes.fetch_add(n, Ordering::Relaxed);
    }

    /// An `error` frame was sent (or a socket closed with it).
    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn open_sockets(&self) -> u64 {
        self.sockets.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self, rooms: usize) -> ChatStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ChatStats {
            sockets: get(&self.sockets),
            sockets_total: get(&self.sockets_total),
            rooms: rooms as u64,
            messages: get(&self.messages),
            fanout_frames: get(&self.fanout_frames),
            socket_writes: get(&self.socket_writes),
            // Every slow consumer is told so (or closed as one) with that error code.
            slow_consumers: get(&self.errors[ErrorCode::SlowConsumer as usize]),
            errors: ErrorCode::ALL
                .iter()
                .map(|&c| (c, get(&self.errors[c as usize])))
                .collect(),
        }
    }
}

/// A reading of a node's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatStats {
    /// Open sockets.
    pub sockets: u64,
    /// Sockets accepted since start.
    pub sockets_total: u64,
    /// Rooms loaded.
    pub rooms: u64,
    /// Messages admitted by rooms on this node.
    pub messages: u64,
    /// Fan-out frames rooms wrote to their sockets (one per fan-out gap with traffic).
    pub fanout_frames: u64,
    /// Writes to (or queued for) single sockets: one per socket per fan-out, however many
    /// frames it carries, and one per reply.
    pub socket_writes: u64,
    /// Sockets closed for falling behind.
    pub slow_consumers: u64,
    /// Error frames sent, by code (every code, zeros included).
    pub errors: Vec<(ErrorCode, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sockets_messages_and_errors_by_code() {
        let stats = Stats::default();
        stats.socket_opened();
        stats.socket_opened();
        stats.socket_closed();
        stats.message();
        stats.fanout_frame();
        stats.socket_writes(1);
        stats.error(ErrorCode::SlowConsumer);
        stats.error(ErrorCode::RateLimited);
        stats.error(ErrorCode::RateLimited);
        let snap = stats.snapshot(3);
        assert_eq!((snap.sockets, snap.sockets_total, snap.rooms), (1, 2, 3));
        assert_eq!((snap.messages, snap.fanout_frames, snap.socket_writes), (1, 1, 1));
        assert_eq!(snap.slow_consumers, 1);
        assert!(snap.errors.contains(&(ErrorCode::RateLimited, 2)));
        assert!(snap.errors.contains(&(ErrorCode::Banned, 0)));
        assert_eq!(snap.errors.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn every_code_has_its_own_slot_and_wire_name() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
            let wire = serde_json::to_string(code).expect("serializes");
            assert_eq!(wire.trim_matches('"'), code.as_str());
        }
    }
}
