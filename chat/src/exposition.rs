//! The chat's families of `/metrics` (`fanout_chat_*`) and its part of `fanout_errors_total`,
//! written from a [`ChatStats`] reading.

use std::fmt;

use fanout_metrics::ErrorSource;
use fanout_metrics::family::{counter, gauge};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::stats::ChatStats;

impl Collector for ChatStats {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut e,
            "fanout_chat_sockets",
            "Open chat WebSockets.",
            self.sockets,
        )?;
        counter(
            &mut e,
            "fanout_chat_sockets",
            "Chat WebSockets accepted.",
            self.sockets_total,
        )?;
        gauge(
            &mut e,
            "fanout_chat_rooms",
            "Chat rooms loaded on this node.",
            self.rooms,
        )?;
        counter(
            &mut e,
            "fanout_chat_messages",
            "Chat messages admitted by rooms on this node.",
            self.messages,
        )?;
        counter(
            &mut e,
            "fanout_chat_fanout_frames",
            "Frames rooms handed to their sockets (several messages each when busy).",
            self.fanout_frames,
        )?;
        counter(
            &mut e,
            "fanout_chat_socket_writes",
            "Writes to single sockets (one per socket per fan-out, and one per reply).",
            self.socket_writes,
        )?;
        counter(
            &mut e,
            "fanout_chat_slow_consumers",
            "Sockets closed for falling too far behind.",
            self.slow_consumers,
        )
    }
}

/// `fanout_errors_total{source="chat"}`: error frames sent, by their code.
impl ErrorSource for ChatStats {
    fn source(&self) -> &'static str {
        "chat"
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        self.errors.iter().map(|&(code, n)| (code.as_str(), n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use fanout_metrics::Exposition;

    use crate::protocol::ErrorCode;

    use super::*;

    #[test]
    fn a_reading_is_prometheus_text() {
        let stats = ChatStats {
            sockets: 1,
            sockets_total: 2,
            rooms: 3,
            messages: 4,
            fanout_frames: 5,
            socket_writes: 6,
            slow_consumers: 1,
            errors: ErrorCode::ALL
                .iter()
                .map(|&c| (c, u64::from(c == ErrorCode::RateLimited) * 2))
                .collect(),
        };
        let mut exposition = Exposition::default();
        exposition.add(stats.clone()).errors(stats);
        let out = exposition.encode();
        assert!(
            out.contains("# TYPE fanout_chat_sockets gauge\nfanout_chat_sockets 1\n"),
            "{out}"
        );
        assert!(out.contains("# TYPE fanout_chat_sockets_total counter\nfanout_chat_sockets_total 2\n"));
        assert!(out.contains("fanout_chat_rooms 3\n"));
        assert!(out.contains("fanout_chat_socket_writes_total 6\n"));
        assert!(out.contains("fanout_chat_slow_consumers_total 1\n"));
        assert!(out.contains("fanout_errors_total{source=\"chat\",kind=\"rate_limited\"} 2\n"));
        assert!(out.contains("fanout_errors_total{source=\"chat\",kind=\"banned\"} 0\n"));
    }
}
