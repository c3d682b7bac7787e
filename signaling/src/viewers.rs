//! Viewer counts: WHEP sessions, HLS playlist requests that carry a `sid`, and heartbeats
//! are marked into the [`audience::Audience`]; the stream resource reads it back; peak and
//! total views are stored when a stream ends. In process, each watched stream's viewer record
//! (lifetime sketch and peak) is also stored at every sweep where it moved and restored at
//! its first mark after a restart, so the numbers survive a restart or a crash.
//!
//! Viewer ids: `sid` values as the player sent them (the same player's playlist requests and
//! heartbeats are one viewer), `whep:<node>:<session>` for WHEP sessions.

use std::time::SystemTime;

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
use tracing::warn;

use crate::app::{AppState, lock};
use crate::error::ApiError;
use crate::lifecycle::Status;

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
        (Some(ms), Some(p)) => match crate::metrics::Protocol::parse(p) {
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
    state.inner.db.get(&id)?.ok_or(ApiError::NotFound)?;
    if let Some(sid) = &beat.sid {
        state.mark(&id, sid);
    }
    if let Some((protocol, ms)) = latency {
        state.inner.player_latency.observe(protocol, ms / 1000.0);
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
        state.mark(&stream, &sid);
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

impl AppState {
    /// `viewer` is watching `stream` now.
    pub(crate) fn mark(&self, stream: &str, viewer: &str) {
        let first = {
            let mut watched = lock(&self.inner.watched);
            let first = !watched.contains_key(stream);
            if first {
                watched.insert(stream.to_string(), 0);
            }
            first
        };
        if first {
            // First mark since this process started watching it: earlier viewers (before a
            // restart, or an earlier live session) come back from the stored record (a union,
            // so a mark that lands before it is not lost).
            self.restore_audience(stream);
        }
        self.inner.config.audience.seen(stream, viewer, SystemTime::now());
    }

    fn restore_audience(&self, stream: &str) {
        let audience = &self.inner.config.audience;
        if !audience.needs_records() {
            return;
        }
        match self.inner.db.audience_record(stream) {
            Ok(Some(record)) => audience.restore(stream, &record),
            Ok(None) => {}
            Err(e) => warn!(stream = %stream, "cannot read the stored viewer record: {e}"),
        }
    }

    /// Store `stream`'s viewer record if it moved since it was last stored (in process).
    fn save_audience(&self, stream: &str) {
        if let Some(record) = self.inner.config.audience.unsaved_record(stream)
            && let Err(e) = self.inner.db.store_audience_record(stream, &record)
        {
            warn!(stream = %stream, "cannot store the viewer record: {e}");
        }
    }

    /// A viewer from outside signaling (a chat socket) is watching `stream`: marked when the
    /// stream exists, so names of streams that do not exist never reach the counter.
    pub fn mark_known(&self, stream: &str, viewer: &str) {
        match self.inner.db.get(stream) {
            Ok(Some(_)) => self.mark(stream, viewer),
            Ok(None) => {}
            Err(e) => warn!(stream = %stream, "cannot look the stream up: {e}"),
        }
    }

    /// The viewer id of a WHEP session of this node.
    pub(crate) fn whep_viewer(&self, session: sfu::SessionId) -> String {
        format!("whep:{}:{session}", self.inner.node_id)
    }

    /// A stream's audience: live from the counter, at least what was stored when it ended.
    pub(crate) async fn audience_of(&self, id: &str) -> AudienceStats {
        let mut stats = match self.inner.config.audience.stats(id, SystemTime::now()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(stream = %id, "cannot read viewer counts: {e}");
                AudienceStats::default()
            }
        };
        match self.inner.db.audience(id) {
            Ok(Some((peak, total))) => {
                stats.peak = stats.peak.max(peak);
                stats.total = stats.total.max(total);
            }
            Ok(None) => {}
            Err(e) => warn!(stream = %id, "cannot read stored viewer counts: {e}"),
        }
        stats
    }

    /// Every re-mark period: mark the WHEP viewers that are still connected, and compute the
    /// current count of every watched stream (raising its peak; the Prometheus gauge).
    pub(crate) async fn sweep_viewers(&self) {
        let now = SystemTime::now();
        let sessions: Vec<(String, Vec<sfu::SessionId>)> = lock(&self.inner.live)
            .iter()
            .filter(|(_, l)| !l.viewers.is_empty())
            .map(|(id, l)| (id.clone(), l.viewers.iter().copied().collect()))
            .collect();
        for (stream, viewers) in &sessions {
            for session in viewers {
                self.mark(stream, &self.whep_viewer(*session));
            }
        }
        let streams: Vec<String> = lock(&self.inner.watched).keys().cloned().collect();
        for stream in streams {
            let current = match self.inner.config.audience.stats(&stream, now).await {
                Ok(s) => s.current,
                Err(e) => {
                    warn!(stream = %stream, "cannot read viewer counts: {e}");
                    continue;
                }
            };
            // A crash or restart loses at most one sweep of total views and peak.
            self.save_audience(&stream);
            let mut watched = lock(&self.inner.watched);
            if current == 0 {
                watched.remove(&stream);
            } else {
                watched.insert(stream, current);
            }
        }
    }

    /// The stream ended: store its peak and total views, and let the counter forget it.
    pub(crate) fn store_audience(&self, id: &str, status: Status) {
        if status != Status::Ended {
            return;
        }
        let state = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let stats = state.audience_of(&id).await;
            state.save_audience(&id);
            if let Err(e) = state.inner.db.store_audience(&id, stats.peak, stats.total) {
                warn!(stream = %id, "cannot store viewer counts: {e}");
                return;
            }
            state.inner.config.audience.forget(&id);
            // The next mark restores the record rather than counting from nothing.
            lock(&state.inner.watched).remove(&id);
        });
    }

    /// Current viewers per watched stream, as of the last sweep.
    pub(crate) fn watched(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = lock(&self.inner.watched)
            .iter()
            .map(|(s, n)| (s.clone(), *n))
            .collect();
        v.sort();
        v
    }
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
