//! How signaling reaches the chat service in the same process: the `chatUrl` of a stream,
//! and telling chat when a stream's clock starts (chat stamps messages with stream time).

use std::time::SystemTime;

/// How signaling reaches the chat service running in the same process.
#[derive(Clone)]
pub struct ChatLink {
    /// The chat service's state (stream-live notifications).
    pub state: chat::ChatState,
    /// HS256 secret shared with chat, for guest tokens.
    pub jwt_secret: Vec<u8>,
    /// The chat listener's port, for `chatUrl`.
    pub port: u16,
}

impl std::fmt::Debug for ChatLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatLink")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// `ws://host:port/v1/chat/{id}` for a stream, on the host the client used.
pub(crate) fn chat_url(port: u16, base: &str, id: &str) -> String {
    let (scheme, rest) = match base.split_once("://") {
        Some(("https", r)) => ("wss", r),
        Some((_, r)) => ("ws", r),
        None => ("ws", base),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{}:{port}/v1/chat/{id}", strip_port(authority))
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Tell chat when a stream went live (or that it is not live any more).
pub(crate) fn notify_live(link: &ChatLink, id: &str, live: bool) {
    let state = link.state.clone();
    let id = id.to_string();
    let since = live.then(SystemTime::now);
    tokio::spawn(async move {
        if let Err(e) = state.set_stream_live(&id, since).await {
            tracing::warn!(stream = %id, "cannot tell chat the stream state: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_url_keeps_the_host_and_swaps_the_port() {
        assert_eq!(
            chat_url(8081, "http://example.com:8080", "x"),
            "ws://example.com:8081/v1/chat/x"
        );
        assert_eq!(
            chat_url(8081, "https://example.com", "x"),
            "wss://example.com:8081/v1/chat/x"
        );
        assert_eq!(
            chat_url(8081, "http://[::1]:8080", "x"),
            "ws://[::1]:8081/v1/chat/x"
        );
        assert_eq!(chat_url(9, "http://h", "x"), "ws://h:9/v1/chat/x");
    }
}
