//! `POST /api/v1/chat/guest-token`: a chat token for a page whose visitor has no account.
//!
//! The token opens one stream's room (`{"stream": id}`), as a viewer. A private stream's needs
//! the request to carry a viewer token for it (or the admin token) as `Authorization: Bearer`:
//! its chat is as private as its video.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a guest token lasts.
const GUEST_TTL: Duration = Duration::from_secs(6 * 3600);

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat/guest-token", post(guest_token))
}

#[derive(Debug, Deserialize)]
struct GuestRequest {
    #[serde(default)]
    name: Option<String>,
    stream: String,
}

async fn guest_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let link = state.config.chat.as_ref().ok_or(ApiError::NotFound)?;
    let req: GuestRequest = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON ({e}): send {{\"stream\": \"<stream id>\", \"name\": \"<name>\"}}"
        ))
    })?;
    let row = crate::endpoint::stream(&state, &req.stream).await?;
    crate::streams::require_watch_access(&state, &headers, &row)?;
    let name = req.name.unwrap_or_else(|| "guest".into());
    let name: String = name.trim().chars().filter(|c| !c.is_control()).take(32).collect();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name is empty".into()));
    }
    let token = chat::mint_guest_token(&link.jwt_secret, &row.id, &name, GUEST_TTL);
    Ok(Json(
        json!({ "token": token, "name": name, "stream": row.id, "expiresIn": GUEST_TTL.as_secs() }),
    ))
}
