//! The streams API: create, read (with viewer counts and ingest health), update, delete,
//! browse (`browse.rs`), rotate the key, stop, and mint viewer tokens. Request and response
//! shapes are in docs/api.md and the OpenAPI description (`GET /api/v1/openapi.json`).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{bearer, hash_key, is_admin, new_secret, require_admin};
use crate::browse::browse;
use crate::db::{StreamMeta, StreamRow, Visibility};
use crate::error::ApiError;
use crate::lifecycle::Status;
use crate::state::AppState;
use crate::stream_fields::{apply, invalid, object, text};
use crate::stream_json::body;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streams", post(create).get(browse))
        .route("/api/v1/streams/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/streams/{id}/rotate-key", post(rotate_key))
        .route("/api/v1/streams/{id}/stop", post(stop))
        .route("/api/v1/streams/{id}/viewer-token", post(viewer_token))
        .route("/api/v1/openapi.json", get(openapi))
}

/// Viewer token lifetimes: default and most.
const DEFAULT_TOKEN_TTL: u64 = 3600;
const MAX_TOKEN_TTL: u64 = 7 * 24 * 3600;

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.config.admin_token)?;
    let mut meta = StreamMeta::default();
    apply(&mut meta, &object(&raw)?)?;
    let key = new_secret("sk_");
    let now = now_ms();
    let row = StreamRow {
        id: new_secret("")[..16].to_string(),
        key_hash: hash_key(&key),
        status: Status::Created,
        created_at: now,
        updated_at: now,
        meta,
    };
    state.db.insert(row.clone()).await?;
    state.sync_pull(&row.id, row.meta.pull_url.as_deref());
    state
        .private
        .set(&row.id, row.meta.visibility == Visibility::Private);
    let mut v = body(&state, &headers, &row);
    v["audience"] = crate::viewers::audience_json(audience::AudienceStats::default());
    v["streamKey"] = json!(key);
    crate::stream_json::add_keyed_urls(&state, &headers, &mut v, &key);
    Ok((StatusCode::CREATED, Json(v)))
}

/// Who may watch (WHEP) and read a stream: anyone when it is public; otherwise the admin or
/// a viewer token for this stream.
pub(crate) fn require_watch_access(
    state: &AppState,
    headers: &HeaderMap,
    row: &StreamRow,
) -> Result<(), ApiError> {
    if row.meta.visibility == Visibility::Public || is_admin(headers, &state.config.admin_token) {
        return Ok(());
    }
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    state.config.viewer_auth.check(token, &row.id).map(|_| ())
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = state.db.get(&id).await?.ok_or(ApiError::NotFound)?;
    require_watch_access(&state, &headers, &row)?;
    Ok(Json(full_body(&state, &headers, &row).await))
}

/// One stream as read, updated or stopped: [`body`] plus its audience and ingest health.
async fn full_body(state: &AppState, headers: &HeaderMap, row: &StreamRow) -> Value {
    let mut v = body(state, headers, row);
    v["audience"] = crate::viewers::audience_json(state.viewers.audience_of(&row.id).await);
    let status = state.streams.runtime(&row.id, row.status).status;
    v["health"] = match crate::stream_health::of(state, &row.id, status).await {
        Some(report) => crate::stream_health::to_json(&report),
        None => Value::Null,
    };
    // The LL-HLS bridge's side of it: transcoding, on the slate, restarting (and why).
    v["hls"] = state
        .config
        .bridge
        .as_ref()
        .and_then(|b| b.health(&row.id))
        .unwrap_or(Value::Null);
    // An RTMP/SRT/RTSP source's side: re-encoding, dropped frames, what it sends that we
    // cannot take.
    v["pull"] = state
        .pulls
        .get()
        .and_then(|p| p.status(&row.id))
        .unwrap_or(Value::Null);
    v["ingest"] = state
        .config
        .sources
        .as_ref()
        .and_then(|s| s.health(&row.id))
        .unwrap_or(Value::Null);
    v
}

/// The stream an admin call is about: `401` without the admin token, `404` when there is none.
async fn admin_stream(state: &AppState, headers: &HeaderMap, id: &str) -> Result<StreamRow, ApiError> {
    require_admin(headers, &state.config.admin_token)?;
    state.db.get(id).await?.ok_or(ApiError::NotFound)
}

async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let mut row = admin_stream(&state, &headers, &id).await?;
    apply(&mut row.meta, &object(&raw)?)?;
    row.updated_at = now_ms();
    if !state
        .db
        .update_meta(&id, row.meta.clone(), row.updated_at)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    state.private.set(&id, row.meta.visibility == Visibility::Private);
    state.sync_pull(&id, row.meta.pull_url.as_deref());
    Ok(Json(full_body(&state, &headers, &row).await))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = admin_stream(&state, &headers, &id).await?;
    if state.streams.runtime(&id, row.status).status == Status::Live {
        return Err(ApiError::Conflict(
            "the stream is live: stop it first (POST /api/v1/streams/{id}/stop)".into(),
        ));
    }
    state.db.delete(&id).await?;
    state.sync_pull(&id, None);
    // A private stream stays private once deleted: its recordings and chat archive stay
    // behind a token (which can no longer be minted), never public.
    state.streams.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.config.admin_token)?;
    let key = new_secret("sk_");
    if !state.db.set_key_hash(&id, hash_key(&key), now_ms()).await? {
        return Err(ApiError::NotFound);
    }
    // The old key stops working now, for whoever is publishing with it too (any protocol):
    // the stream waits its reconnect grace for a publisher with the new key.
    if let Some(publisher) = state.streams.publisher(&id) {
        tracing::info!(stream = %id, "stream key rotated: the current publisher is disconnected");
        let _ = state.sfu.close(publisher);
    }
    let mut v = json!({ "id": id, "streamKey": key });
    crate::stream_json::add_keyed_urls(&state, &headers, &mut v, &key);
    Ok(Json(v))
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = admin_stream(&state, &headers, &id).await?;
    if !state.streams.stop(&id, row.status).await {
        return Err(ApiError::Conflict("the stream is not live".into()));
    }
    let row = state.db.get(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(full_body(&state, &headers, &row).await))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenRequest {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

async fn viewer_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.config.admin_token)?;
    let req: TokenRequest = serde_json::from_value(Value::Object(object(&raw)?))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let row = state.db.get(&id).await?.ok_or(ApiError::NotFound)?;
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL);
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(invalid("ttlSecs", &format!("must be 1..={MAX_TOKEN_TTL}")));
    }
    let sub = match req.sub {
        Some(s) => text("sub", &json!(s), 128)?,
        None => new_secret("viewer_"),
    };
    // A closed set, and the role holds in this stream's chat only (the token names it).
    // Platform staff (`admin`) is not a role of one stream.
    let role = match req.role {
        Some(r) => match serde_json::from_value::<chat::Role>(json!(r)) {
            Ok(role) if role != chat::Role::Admin => r,
            _ => {
                return Err(invalid(
                    "role",
                    "one of viewer, subscriber, vip, moderator, broadcaster",
                ));
            }
        },
        None => "viewer".into(),
    };
    let auth = &state.config.viewer_auth;
    let (token, exp) = auth.mint(&row.id, &sub, &role, Duration::from_secs(ttl));
    let base = state.config.base_url(&headers);
    let hls = format!(
        "{base}/hls/{}/{}/master.m3u8",
        row.id,
        auth.hls_segment(&row.id, exp)
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expiresAt": exp,
            "stream": row.id,
            "sub": sub,
            "role": role,
            "hlsUrl": hls,
            "whepUrl": format!("{base}/whep/{}", row.id),
        })),
    ))
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/openapi.json"),
    )
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
