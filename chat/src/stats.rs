//! Counters of one chat node, for Prometheus: sockets, rooms, messages in, fan-out frames and
//! socket writes out, error frames by code, sockets closed as slow consumers.
//!
//! Updated with relaxed atomics on the paths that already exist (a socket joining, a room
//! flushing, a socket flushing), so counting costs no extra wake-up or lock. Read with
//! [`crate::ChatState::stats`]; [`render`] writes the text exposition that `fanout serve`'s
//! `/metrics` and the chat listener's own `/metrics` both serve.

use std::fmt::Write;
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

/// Append the Prometheus text exposition of `s`.
pub fn render(out: &mut String, s: &ChatStats) {
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric("fanout_chat_sockets", "gauge", "Open chat WebSockets.", s.sockets);
    metric(
        "fanout_chat_sockets_total",
        "counter",
        "Chat WebSockets accepted.",
        s.sockets_total,
    );
    metric(
        "fanout_chat_rooms",
        "gauge",
        "Chat rooms loaded on this node.",
        s.rooms,
    );
    metric(
        "fanout_chat_messages_total",
        "counter",
        "Chat messages admitted by rooms on this node.",
        s.messages,
    );
    metric(
        "fanout_chat_fanout_frames_total",
        "counter",
        "Frames rooms handed to their sockets (several messages each when busy).",
        s.fanout_frames,
    );
    metric(
        "fanout_chat_socket_writes_total",
        "counter",
        "Writes to single sockets (one per socket per fan-out, and one per reply).",
        s.socket_writes,
    );
    metric(
        "fanout_chat_slow_consumers_total",
        "counter",
        "Sockets closed for falling too far behind.",
        s.slow_consumers,
    );
}

/// The `# HELP`/`# TYPE` lines of `fanout_errors_total`, shared by every error source of a
/// process (a metric family is declared once per exposition).
pub const ERRORS_HEADER: &str = "# HELP fanout_errors_total Errors answered, by where and kind.\n\
                                 # TYPE fanout_errors_total counter";

/// Append the chat's `fanout_errors_total{source="chat",kind=...}` samples (after
/// [`ERRORS_HEADER`]).
pub fn render_errors(out: &mut String, s: &ChatStats) {
    for (code, n) in &s.errors {
        let _ = writeln!(
            out,
            "fanout_errors_total{{source=\"chat\",kind=\"{}\"}} {n}",
            code.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
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
        assert_eq!(snap.slow_consumers, 1);
        let mut out = String::new();
        render(&mut out, &snap);
        out.push_str(ERRORS_HEADER);
        out.push('\n');
        render_errors(&mut out, &snap);
        assert!(out.contains("\nfanout_chat_sockets 1\n"), "{out}");
        assert!(out.contains("fanout_errors_total{source=\"chat\",kind=\"rate_limited\"} 2\n"));
        assert!(out.contains("fanout_errors_total{source=\"chat\",kind=\"banned\"} 0\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect("sample");
            value.parse::<u64>().expect("integer sample");
        }
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
