//! The HLS origin's door: a private stream's playlists and media are served only below a
//! signed path (`/hls/{id}/~{exp}.{sig}/...`, see [`crate::viewer_auth`]); public streams are
//! served at both the plain and a signed path.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::viewer_auth::unix_now;

/// The HLS origin's router behind the check.
pub fn guard_hls(state: AppState, hls: Router) -> Router {
    hls.layer(axum::middleware::from_fn_with_state(state, check))
}

async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(rest) = req.uri().path().strip_prefix("/hls/") else {
        return next.run(req).await;
    };
    let (stream, after) = rest.split_once('/').unwrap_or((rest, ""));
    let (first, tail) = after.split_once('/').unwrap_or((after, ""));
    if first.starts_with('~') {
        if let Err(refusal) = state
            .config
            .viewer_auth
            .check_hls_segment(stream, first, unix_now())
        {
            return refuse(StatusCode::FORBIDDEN, refusal.reason());
        }
        let path = format!("/hls/{stream}/{tail}");
        let uri = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        match uri.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "malformed path"),
        }
    } else if state.private.contains(stream) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "private stream: play the signed hlsUrl from POST /api/v1/streams/{id}/viewer-token",
        );
    }
    next.run(req).await
}

/// A refusal that no cache keeps and that a page on another origin can read.
fn refuse(status: StatusCode, reason: &str) -> Response {
    let body = serde_json::json!({ "error": reason }).to_string();
    let mut res = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}
