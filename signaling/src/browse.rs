//! `GET /api/v1/streams`: live public streams for everyone (most watched first), any
//! stream for the admin, a page at a time.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::is_admin;
use crate::db::StreamRow;
use crate::error::ApiError;
use crate::lifecycle::Status;
use crate::state::AppState;
use crate::stream_json::body;

/// Query of the browse call.
#[derive(Debug, Deserialize)]
pub(crate) struct BrowseQuery {
    category: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    status: Option<String>,
}

/// Most streams a browse call looks at (live streams on one server are far fewer).
const BROWSE_SCAN: usize = 10_000;

pub(crate) async fn browse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BrowseQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let admin = is_admin(&headers, &state.config.admin_token);
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
    let rows = state.db.list(status, !admin, category, BROWSE_SCAN).await?;
    let mut entries: Vec<(usize, StreamRow)> = rows
        .into_iter()
        .map(|r| (state.streams.runtime(&r.id, r.status).viewers, r))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        for n in [0, 20, 12345] {
            assert_eq!(decode_cursor(&encode_cursor(n)), Some(n));
        }
        assert_eq!(decode_cursor("20"), None);
        assert_eq!(decode_cursor("ozz"), None);
    }
}
