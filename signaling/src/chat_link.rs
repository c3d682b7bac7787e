//! Signaling's side of chat: guest tokens for the pages, and telling chat when a stream's
//! clock starts (chat stamps messages with stream time).

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

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

/// How long a guest token lasts.
const GUEST_TTL: Duration = Duration::from_secs(6 * 3600);

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat/guest-token", post(guest_token))
}

#[derive(Debug, Deserialize)]
struct GuestRequest {
    #[serde(default)]
    name: Option<String>,
}

async fn guest_token(State(state): State<AppState>, raw: Bytes) -> Result<impl IntoResponse, ApiError> {
    let link = state.inner.config.chat.as_ref().ok_or(ApiError::NotFound)?;
    let req: GuestRequest = if raw.is_empty() {
        GuestRequest { name: None }
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let name = req.name.unwrap_or_else(|| "guest".into());
    let name: String = name.trim().chars().filter(|c| !c.is_control()).take(32).collect();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name is empty".into()));
    }
    let token = chat::mint_guest_token(&link.jwt_secret, &name, GUEST_TTL);
    Ok(Json(
        json!({ "token": token, "name": name, "expiresIn": GUEST_TTL.as_secs() }),
    ))
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
