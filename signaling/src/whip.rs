//! WHIP (RFC 9725): publishing into a stream.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{patch, post};
use sfu::SessionKind;

use crate::auth::{bearer, constant_time_eq, hash_key};
use crate::endpoint;
use crate::error::ApiError;
use crate::rate_limit::Client;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/whip/{id}",
            post(create).options(|| async { endpoint::options() }),
        )
        .route(
            "/whip/{id}/{resource}",
            patch(update)
                .delete(remove)
                .options(|| async { endpoint::options() }),
        )
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
    let key = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    if !constant_time_eq(hash_key(key).as_bytes(), row.key_hash.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    endpoint::create(&state, &row, SessionKind::Publisher, "whip", client, &body)
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
