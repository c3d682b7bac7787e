//! `GET /healthz`: the process answers. `GET /readyz`: it can take new sessions now (the
//! database answers, every media worker runs and at least one keeps up with its media, and the
//! server is not draining), for load balancers and orchestrators that route new viewers and
//! publishers. A worker that is behind is named in the body, ready or not.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::db::DbError;
use crate::state::AppState;

/// A database that takes longer than this to answer a trivial query is not ready.
const DB_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = match not_ready(&state).await {
        None => match behind(&state) {
            Some(detail) => (StatusCode::OK, format!("ready ({detail})")),
            None => (StatusCode::OK, "ready".to_string()),
        },
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}")),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Why the server should not get new sessions, if it should not.
async fn not_ready(state: &AppState) -> Option<String> {
    if state.draining() {
        return Some("draining".into());
    }
    let (running, workers) = state.sfu.workers_running();
    if running < workers {
        return Some(format!(
            "{} of {workers} media workers stopped",
            workers - running
        ));
    }
    let lag = state.sfu.worker_lag();
    if lag.iter().all(sfu::Lag::overloaded) {
        // New viewers would only make every worker later: send them to another server.
        return behind(state).map(|detail| format!("overloaded: {detail}"));
    }
    match tokio::time::timeout(DB_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(DbError::Sqlite(e))) => Some(format!("database: {e}")),
        Ok(Err(DbError::Stopped)) => Some("database check failed".into()),
        Err(_) => Some("database not answering".into()),
    }
}

/// Which media workers cannot keep up, in words, if any.
fn behind(state: &AppState) -> Option<String> {
    let lag = state.sfu.worker_lag();
    let slow: Vec<String> = lag
        .iter()
        .enumerate()
        .filter(|(_, l)| l.overloaded())
        .map(|(i, l)| {
            format!(
                "media worker {i} behind: oldest media {} ms, {} late packets skipped in the last second",
                l.oldest.as_millis(),
                l.late_drops
            )
        })
        .collect();
    (!slow.is_empty()).then(|| {
        format!(
            "{} of {} media workers behind; {}",
            slow.len(),
            lag.len(),
            slow.join("; ")
        )
    })
}
