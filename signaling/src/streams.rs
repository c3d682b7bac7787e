//! The streams API: create, read (with viewer counts and ingest health), update, delete,
//! browse, rotate the key, stop, and mint viewer tokens. Request and response shapes are in docs/api.md and the OpenAPI description
//! (`GET /api/v1/openapi.json`).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::{bearer, hash_key, is_admin, new_secret, require_admin};
use crate::db::{StreamMeta, StreamRow, Visibility};
use crate::error::ApiError;
use crate::lifecycle::Status;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streams", post(create).get(browse))
        .route("/api/v1/streams/{id}", get(read).patch(update).delete(remove))
        .route("/api/v1/streams/{id}/rotate-key", post(rotate_key))
        .route("/api/v1/streams/{id}/stop", post(stop))
        .route("/api/v1/streams/{id}/viewer-token", post(viewer_token))
        .route("/api/v1/openapi.json", get(openapi))
}

/// Longest title, category, tag; most tags.
const MAX_TITLE: usize = 200;
const MAX_CATEGORY: usize = 64;
const MAX_TAG: usize = 32;
const MAX_TAGS: usize = 10;
/// Viewer token lifetimes: default and most.
const DEFAULT_TOKEN_TTL: u64 = 3600;
const MAX_TOKEN_TTL: u64 = 7 * 24 * 3600;

fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::Unprocessable(format!("{field}: {why}"))
}

/// A JSON object body (empty means `{}`); 400 when it is not JSON or not an object.
fn object(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest("the body must be a JSON object".into())),
        Err(e) => Err(ApiError::BadRequest(format!("invalid JSON: {e}"))),
    }
}

fn text(field: &str, v: &Value, max: usize) -> Result<String, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(field, "must be a string"))?
        .trim();
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, &format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(s.to_owned())
}

fn optional_text(field: &str, v: &Value, max: usize) -> Result<Option<String>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    text(field, v, max).map(Some)
}

fn language(v: &Value) -> Result<Option<String>, ApiError> {
    let Some(s) = optional_text("language", v, 35)? else {
        return Ok(None);
    };
    // BCP 47 in its common shape: a 2-3 letter language, then alphanumeric subtags.
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok {
        return Err(invalid(
            "language",
            "must be a language tag such as \"en\" or \"pt-BR\"",
        ));
    }
    Ok(Some(s))
}

fn tags(v: &Value) -> Result<Vec<String>, ApiError> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid("tags", "must be an array of strings"))?;
    if list.len() > MAX_TAGS {
        return Err(invalid("tags", &format!("at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        let t = text("tags", t, MAX_TAG)?.to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn flag(field: &str, v: &Value) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| invalid(field, "must be true or false"))
}

/// Applies the fields present in `body` to `meta`; unknown fields are refused (a typo must
/// not pass silently).
fn apply(meta: &mut StreamMeta, body: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, v) in body {
        match key.as_str() {
            "title" => meta.title = text("title", v, MAX_TITLE)?,
            "category" => {
                meta.category = optional_text("category", v, MAX_CATEGORY)?.map(|c| c.to_lowercase())
            }
            "language" => meta.language = language(v)?,
            "tags" => meta.tags = tags(v)?,
            "enableDvr" => meta.enable_dvr = flag("enableDvr", v)?,
            "lowLatencyMode" => meta.low_latency = flag("lowLatencyMode", v)?,
            "visibility" => {
                meta.visibility = v
                    .as_str()
                    .and_then(Visibility::parse)
                    .ok_or_else(|| invalid("visibility", "must be \"public\" or \"private\""))?;
            }
            other => return Err(invalid(other, "unknown field")),
        }
    }
    Ok(())
}

/// Every URL of a stream. Ingest protocols not running on this server are `null`.
fn urls(state: &AppState, base: &str, id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("whipUrl".into(), json!(format!("{base}/whip/{id}")));
    m.insert("whepUrl".into(), json!(format!("{base}/whep/{id}")));
    m.insert("hlsUrl".into(), json!(format!("{base}/hls/{id}/master.m3u8")));
    let ingest = &state.inner.config.ingest;
    m.insert(
        "rtmpUrl".into(),
        json!(ingest.rtmp.as_ref().map(|u| format!("{u}/{id}"))),
    );
    m.insert(
        "srtUrl".into(),
        json!(ingest.srt.as_ref().map(|u| format!("{u}?streamid={id}"))),
    );
    m.insert(
        "chatUrl".into(),
        json!(
            state
                .inner
                .config
                .chat
                .as_ref()
                .map(|link| crate::chat_link::chat_url(link.port, base, id))
        ),
    );
    m.insert("watchUrl".into(), json!(format!("{base}/watch.html?stream={id}")));
    m.insert(
        "hlsWatchUrl".into(),
        json!(format!("{base}/hls.html?stream={id}")),
    );
    m.insert(
        "publishUrl".into(),
        json!(format!("{base}/publish.html?stream={id}")),
    );
    m
}

pub(crate) fn body(state: &AppState, headers: &HeaderMap, row: &StreamRow) -> Value {
    let (status, reconnecting, viewers) = state.runtime(&row.id, row.status);
    let m = &row.meta;
    let mut v = json!({
        "id": row.id,
        "title": m.title,
        "category": m.category,
        "language": m.language,
        "tags": m.tags,
        "enableDvr": m.enable_dvr,
        "lowLatencyMode": m.low_latency,
        "visibility": m.visibility.as_str(),
        "status": status.as_str(),
        "reconnecting": reconnecting,
        "viewers": viewers,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    });
    let base = state.base_url(headers);
    if let Some(obj) = v.as_object_mut() {
        obj.extend(urls(state, &base, &row.id));
    }
    v
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.inner.config.admin_token)?;
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
    state.inner.db.insert(&row)?;
    state.set_private(&row.id, row.meta.visibility == Visibility::Private);
    let mut v = body(&state, &headers, &row);
    v["audience"] = crate::viewers::audience_json(audience::AudienceStats::default());
    v["streamKey"] = json!(key);
    Ok((StatusCode::CREATED, Json(v)))
}

/// Who may watch (WHEP) and read a stream: anyone when it is public; otherwise the admin or
/// a viewer token for this stream.
pub(crate) fn require_watch_access(
    state: &AppState,
    headers: &HeaderMap,
    row: &StreamRow,
) -> Result<(), ApiError> {
    if row.meta.visibility == Visibility::Public || is_admin(headers, &state.inner.config.admin_token) {
        return Ok(());
    }
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    state.inner.config.viewer_auth.check(token, &row.id).map(|_| ())
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = state.inner.db.get(&id)?.ok_or(ApiError::NotFound)?;
    require_watch_access(&state, &headers, &row)?;
    Ok(Json(full_body(&state, &headers, &row).await))
}

/// One stream as read, updated or stopped: [`body`] plus its audience and ingest health.
async fn full_body(state: &AppState, headers: &HeaderMap, row: &StreamRow) -> Value {
    let mut v = body(state, headers, row);
    v["audience"] = crate::viewers::audience_json(state.audience_of(&row.id).await);
    let status = state.runtime(&row.id, row.status).0;
    v["health"] = match crate::stream_health::of(state, &row.id, status).await {
        Some(report) => crate::stream_health::to_json(&report),
        None => Value::Null,
    };
    v
}

/// The stream an admin call is about: `401` without the admin token, `404` when there is none.
fn admin_stream(state: &AppState, headers: &HeaderMap, id: &str) -> Result<StreamRow, ApiError> {
    require_admin(headers, &state.inner.config.admin_token)?;
    state.inner.db.get(id)?.ok_or(ApiError::NotFound)
}

async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let mut row = admin_stream(&state, &headers, &id)?;
    apply(&mut row.meta, &object(&raw)?)?;
    row.updated_at = now_ms();
    if !state.inner.db.update_meta(&id, &row.meta, row.updated_at)? {
        return Err(ApiError::NotFound);
    }
    state.set_private(&id, row.meta.visibility == Visibility::Private);
    Ok(Json(full_body(&state, &headers, &row).await))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = admin_stream(&state, &headers, &id)?;
    let (status, _, _) = state.runtime(&id, row.status);
    if status == Status::Live {
        return Err(ApiError::Conflict(
            "the stream is live: stop it first (POST /api/v1/streams/{id}/stop)".into(),
        ));
    }
    state.inner.db.delete(&id)?;
    state.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&headers, &state.inner.config.admin_token)?;
    let key = new_secret("sk_");
    if !state.inner.db.set_key_hash(&id, &hash_key(&key), now_ms())? {
        return Err(ApiError::NotFound);
    }
    Ok(Json(json!({ "id": id, "streamKey": key })))
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = admin_stream(&state, &headers, &id)?;
    if !state.stop(&id, row.status) {
        return Err(ApiError::Conflict("the stream is not live".into()));
    }
    let row = state.inner.db.get(&id)?.ok_or(ApiError::NotFound)?;
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
    require_admin(&headers, &state.inner.config.admin_token)?;
    let req: TokenRequest = serde_json::from_value(Value::Object(object(&raw)?))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let row = state.inner.db.get(&id)?.ok_or(ApiError::NotFound)?;
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL);
    if ttl == 0 || ttl > MAX_TOKEN_TTL {
        return Err(invalid("ttlSecs", &format!("must be 1..={MAX_TOKEN_TTL}")));
    }
    let sub = match req.sub {
        Some(s) => text("sub", &json!(s), 128)?,
        None => new_secret("viewer_"),
    };
    let role = match req.role {
        Some(r) => text("role", &json!(r), 32)?,
        None => "viewer".into(),
    };
    let auth = &state.inner.config.viewer_auth;
    let (token, exp) = auth.mint(&row.id, &sub, &role, Duration::from_secs(ttl));
    let base = state.base_url(&headers);
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

/// Query of the browse call.
#[derive(Debug, Deserialize)]
struct BrowseQuery {
    category: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    status: Option<String>,
}

/// Most streams a browse call looks at (live streams on one server are far fewer).
const BROWSE_SCAN: usize = 10_000;

async fn browse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BrowseQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let admin = is_admin(&headers, &state.inner.config.admin_token);
    let limit = match q.limit.as_deref() {
        None => 20,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1..=100".into()))?,
    };
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(c).ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?,
    };
    // Others see live public streams; the admin may ask for any status (`all`), private included.
    let status = match q.status.as_deref() {
        None | Some("live") => Some(Status::Live),
        Some(s) if !admin => {
            return Err(ApiError::Forbidden(format!("status={s} needs the admin token")));
        }
        Some("all") => None,
        Some("created") => Some(Status::Created),
        Some("ended") => Some(Status::Ended),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status must be live, created, ended or all".into(),
            ));
        }
    };
    let category = q.category.as_deref().map(str::to_lowercase);
    let mut rows = state
        .inner
        .db
        .list(status, !admin, category.as_deref(), BROWSE_SCAN)?;
    let mut entries: Vec<(usize, StreamRow)> = rows
        .drain(..)
        .map(|r| (state.runtime(&r.id, r.status).2, r))
        .collect();
    match q.sort.as_deref() {
        None | Some("viewers") => {
            entries.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.created_at.cmp(&a.1.created_at)));
        }
        Some("newest") => {} // the database's order
        Some(_) => return Err(ApiError::BadRequest("sort must be viewers or newest".into())),
    }
    let total = entries.len();
    let page: Vec<Value> = entries
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(_, r)| body(&state, &headers, r))
        .collect();
    let next = (offset + page.len() < total).then(|| encode_cursor(offset + page.len()));
    Ok(Json(json!({ "streams": page, "nextCursor": next })))
}

/// Cursors are opaque to clients: an offset into the sorted list, in a form that is not
/// mistaken for a number to do arithmetic on.
fn encode_cursor(offset: usize) -> String {
    format!("o{offset:x}")
}

fn decode_cursor(c: &str) -> Option<usize> {
    usize::from_str_radix(c.strip_prefix('o')?, 16).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_validated_field_by_field() {
        let mut m = StreamMeta::default();
        let ok = json!({"title": " Speedrun ", "category": "Gaming", "language": "pt-BR",
            "tags": ["Any%", "any%", "pb"], "enableDvr": false, "lowLatencyMode": false,
            "visibility": "private"});
        apply(&mut m, ok.as_object().expect("object")).expect("valid");
        assert_eq!(m.title, "Speedrun");
        assert_eq!(m.category.as_deref(), Some("gaming"));
        assert_eq!(m.tags, ["any%", "pb"]);
        assert!(!m.enable_dvr && !m.low_latency);
        assert_eq!(m.visibility, Visibility::Private);
        for (bad, field) in [
            (json!({"title": ""}), "title"),
            (json!({"title": "x".repeat(201)}), "title"),
            (json!({"title": 5}), "title"),
            (json!({"language": "english!"}), "language"),
            (json!({"tags": "a,b"}), "tags"),
            (json!({"tags": vec!["t"; 11]}), "tags"),
            (json!({"enableDvr": "yes"}), "enableDvr"),
            (json!({"visibility": "secret"}), "visibility"),
            (json!({"titel": "typo"}), "titel"),
        ] {
            match apply(&mut m, bad.as_object().expect("object")) {
                Err(ApiError::Unprocessable(why)) => assert!(why.starts_with(field), "{why}"),
                other => panic!("{bad} gave {other:?}"),
            }
        }
        apply(&mut m, json!({"category": null}).as_object().expect("object")).expect("null clears");
        assert_eq!(m.category, None);
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(object(b"").expect("empty is {}").is_empty());
        assert!(matches!(object(b"[1]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(object(b"{"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        for n in [0, 20, 12345] {
            assert_eq!(decode_cursor(&encode_cursor(n)), Some(n));
        }
        assert_eq!(decode_cursor("20"), None);
        assert_eq!(decode_cursor("ozz"), None);
    }
}
