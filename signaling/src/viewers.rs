//! Viewers' own calls: `POST /api/v1/streams/{id}/heartbeat` (an HLS player's presence, a
//! player's latency) and the LL-HLS origin's middleware that marks playlist requests with a
//! `sid`. The counting is the `Viewers` service's (`state/viewers.rs`).

use audience::AudienceStats;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::player_latency::Protocol;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/streams/{id}/heartbeat", post(heartbeat))
}

/// A player's session id: 8 to 64 characters of `A-Z a-z 0-9 _ -`.
pub(crate) fn valid_sid(sid: &str) -> bool {
    (8..=64).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    /// The player's session id (HLS players: the `sid` of their playlist requests). A WebRTC
    /// page reporting its latency sends none: its WHEP session already counts it.
    sid: Option<String>,
    /// How far behind the source the frame on screen is, as the player measures it.
    latency_ms: Option<f64>,
    /// `hls` or `webrtc` (needed with `latencyMs`).
    protocol: Option<String>,
}

async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<StatusCode, ApiError> {
    let beat: Heartbeat =
        serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    if beat.sid.as_deref().is_some_and(|sid| !valid_sid(sid)) {
        return Err(ApiError::BadRequest(
            "sid must be 8-64 characters of A-Z a-z 0-9 _ -".into(),
        ));
    }
    if beat.sid.is_none() && beat.latency_ms.is_none() {
        return Err(ApiError::BadRequest(
            "a heartbeat carries a sid, a latencyMs, or both".into(),
        ));
    }
    let latency = match (beat.latency_ms, beat.protocol.as_deref()) {
        (None, _) => None,
        (Some(ms), _) if !(0.0..=600_000.0).contains(&ms) => {
            return Err(ApiError::Unprocessable(
                "latencyMs must be between 0 and 600000".into(),
            ));
        }
        (Some(ms), Some(p)) => match Protocol::parse(p) {
            Some(p) => Some((p, ms)),
            None => {
                return Err(ApiError::Unprocessable(
                    "protocol must be \"hls\" or \"webrtc\"".into(),
                ));
            }
        },
        (Some(_), None) => {
            return Err(ApiError::Unprocessable(
                "protocol is required with latencyMs".into(),
            ));
        }
    };
    state.db.get(&id).await?.ok_or(ApiError::NotFound)?;
    if let Some(sid) = &beat.sid {
        state.viewers.mark(&id, sid).await;
    }
    if let Some((protocol, ms)) = latency {
        state.player_latency.observe(protocol, ms / 1000.0);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The stream and `sid` of a playlist request under `/hls/`, if it carries a valid one.
fn hls_mark(path: &str, query: Option<&str>) -> Option<(String, String)> {
    let rest = path.strip_prefix("/hls/")?;
    if !rest.ends_with(".m3u8") {
        return None;
    }
    let stream = rest.split('/').next().filter(|s| !s.is_empty())?;
    let sid = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sid="))
        .filter(|sid| valid_sid(sid))?;
    Some((stream.to_string(), sid.to_string()))
}

/// Middleware for the LL-HLS origin's routes: a playlist request with a `sid` that the
/// origin answered successfully marks that viewer (so names of streams that do not exist
/// never reach the counter).
pub async fn mark_hls_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mark = hls_mark(request.uri().path(), request.uri().query());
    let response = next.run(request).await;
    if let Some((stream, sid)) = mark
        && response.status().is_success()
    {
        state.viewers.mark(&stream, &sid).await;
    }
    response
}

/// The `audience` object of a stream resource.
pub(crate) fn audience_json(stats: AudienceStats) -> Value {
    json!({
        "current": stats.current,
        "peak": stats.peak,
        "totalViews": stats.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_short_plain_tokens() {
        assert!(valid_sid("abcdEFGH"));
        assert!(valid_sid("0123456789_-abcdef"));
        assert!(valid_sid(&"x".repeat(64)));
        assert!(!valid_sid("short"));
        assert!(!valid_sid(&"x".repeat(65)));
        assert!(!valid_sid("has space in it"));
        assert!(!valid_sid("percent%20encoded"));
    }

    #[test]
    fn playlist_requests_with_a_sid_are_marks() {
        assert_eq!(
            hls_mark("/hls/s1/720p/live.m3u8", Some("_HLS_msn=3&sid=abcdefgh1")),
            Some(("s1".into(), "abcdefgh1".into()))
        );
        assert_eq!(
            hls_mark("/hls/s1/master.m3u8", Some("sid=abcdefgh1")),
            Some(("s1".into(), "abcdefgh1".into()))
        );
        assert_eq!(hls_mark("/hls/s1/720p/live.m3u8", None), None);
        assert_eq!(hls_mark("/hls/s1/720p/live.m3u8", Some("sid=bad")), None);
        assert_eq!(hls_mark("/hls/s1/720p/s3.m4s", Some("sid=abcdefgh1")), None);
        assert_eq!(hls_mark("/api/v1/streams/s1", Some("sid=abcdefgh1")), None);
        assert_eq!(hls_mark("/hls//x.m3u8", Some("sid=abcdefgh1")), None);
    }
}
