//! WHEP: watching a stream, and the viewer's layer resource.
//!
//! A private stream's WHEP endpoint needs `Authorization: Bearer` with a viewer token for it
//! (or the admin token).
//!
//! `GET <session>/layer` reads the viewer's layer state; `POST <session>/layer` with
//! `{"rid":"q"}` pins a layer and `{"rid":null}` returns to automatic choice.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sfu::SessionKind;

use crate::endpoint;
use crate::error::ApiError;
use crate::rate_limit::Client;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/whep/{id}",
            post(create).options(|| async { endpoint::options() }),
        )
        .route(
            "/whep/{id}/{resource}",
            patch(update)
                .delete(remove)
                .options(|| async { endpoint::options() }),
        )
        .route("/whep/{id}/{resource}/layer", get(layer).post(set_layer))
}

async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    endpoint::require_content_type(&headers, "application/sdp")?;
    let row = endpoint::stream(&state, &id).await?;
    crate::streams::require_watch_access(&state, &headers, &row)?;
    endpoint::create(&state, &row, SessionKind::Subscriber, "whep", client, &body)
}

async fn update(
    State(state): State<AppState>,
    Path((id, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    endpoint::patch(&state, &id, &resource, &headers, &body).await
}

async fn remove(
    State(state): State<AppState>,
    Path((id, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    endpoint::delete(&state, &id, &resource)
}

async fn layer(
    State(state): State<AppState>,
    Path((id, resource)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let r = endpoint::resource(&state, &id, &resource)?;
    let s = state.sfu.layer_state(r.session).await?;
    Ok(Json(json!({
        "mode": if s.pinned.is_some() { "pinned" } else { "auto" },
        "rid": s.current,
        "target": s.target,
        "pinned": s.pinned,
        "available": s.available,
        "estimateBps": s.estimate_bps,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct LayerRequest {
    rid: Option<String>,
}

async fn set_layer(
    State(state): State<AppState>,
    Path((id, resource)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r = endpoint::resource(&state, &id, &resource)?;
    let req: LayerRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    if let Some(rid) = &req.rid
        && (rid.is_empty() || rid.len() > 16 || !rid.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(ApiError::BadRequest(
            "rid must be 1-16 alphanumeric characters".into(),
        ));
    }
    state.sfu.set_layer(r.session, req.rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
