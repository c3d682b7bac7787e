//! The streams API: create and read streams (with their viewer counts).

use audience::AudienceStats;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{hash_key, new_secret, require_admin};
use crate::db::StreamRow;
use crate::error::ApiError;
use crate::lifecycle::Status;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streams", post(create))
        .route("/api/v1/streams/{id}", get(read))
}

#[derive(Debug, Deserialize)]
struct CreateStream {
    #[serde(default)]
    title: Option<String>,
}

fn urls(base: &str, id: &str) -> Value {
    json!({
        "whipUrl": format!("{base}/whip/{id}"),
        "whepUrl": format!("{base}/whep/{id}"),
        "watchUrl": format!("{base}/watch.html?stream={id}"),
        "publishUrl": format!("{base}/publish.html?stream={id}"),
    })
}

fn body(state: &AppState, headers: &HeaderMap, row: &StreamRow, audience: AudienceStats) -> Value {
    let (status, reconnecting, viewers) = state.runtime(&row.id, row.status);
    let mut v = json!({
        "id": row.id,
        "title": row.title,
        "status": status.as_str(),
        "reconnecting": reconnecting,
        "viewers": viewers,
        "audience": crate::viewers::audience_json(audience),
        "createdAt": row.created_at,
    });
    let base = state.base_url(headers);
    let links = urls(&base, &row.id);
    if let (Some(obj), Some(l)) = (v.as_object_mut(), links.as_object()) {
        obj.extend(l.clone());
    }
    if let Some(link) = &state.inner.config.chat {
        v["chatUrl"] = json!(crate::chat_link::chat_url(link.port, &base, &row.id));
    }
    v
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.inner.config.admin_token)?;
    let req: CreateStream = if raw.is_empty() {
        CreateStream { title: None }
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let title = req.title.unwrap_or_else(|| "Untitled stream".into());
    if title.chars().count() > 200 {
        return Err(ApiError::BadRequest("title longer than 200 characters".into()));
    }
    let key = new_secret("sk_");
    let row = StreamRow {
        id: new_secret("")[..16].to_string(),
        title,
        key_hash: hash_key(&key),
        status: Status::Created,
        created_at: now_ms(),
    };
    state.inner.db.insert(&row)?;
    let mut v = body(&state, &headers, &row, AudienceStats::default());
    v["streamKey"] = json!(key);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = state.inner.db.get(&id)?.ok_or(ApiError::NotFound)?;
    let audience = state.audience_of(&row.id).await;
    Ok(Json(body(&state, &headers, &row, audience)))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
