//! `GET /api/v1/ice-servers`: the TURN servers and fresh credentials, for pages that want them
//! before their first offer.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ice-servers", get(ice_servers))
}

/// `{"iceServers": [...]}` in the shape `RTCPeerConnection` takes.
async fn ice_servers(State(state): State<AppState>) -> Response {
    let servers = match &state.config.turn {
        Some(turn) => {
            let c = turn.mint(SystemTime::now(), "fanout");
            vec![json!({"urls": c.urls, "username": c.username, "credential": c.credential})]
        }
        None => Vec::new(),
    };
    let mut res = Json(json!({ "iceServers": servers })).into_response();
    // Credentials are per request and expire: never cached by anyone.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
