//! `GET /metrics`: the one place a `fanout serve` (or `fanout signal`) process builds its
//! Prometheus registry from every part's counters and encodes it (see the `fanout-metrics`
//! crate for which part owns which families).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use fanout_metrics::Exposition;

use crate::auth::is_admin;
use crate::error::ApiErrors;
use crate::service_counts::ServiceCounts;
use crate::state::AppState;
use crate::stream_health::IngestHealth;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    // Series labelled with a private stream's id are for the admin only: the id is what opens
    // the stream's pages.
    let public_only = !is_admin(&headers, &state.config.admin_token);
    // The only part that waits (on the SFU workers), so it is read before the registry is built.
    let ingest = IngestHealth::read(&state, public_only).await;
    let mut exposition = Exposition::default();
    exposition
        .add(state.sfu.metrics())
        .add(ServiceCounts::read(&state, public_only))
        .add(ingest)
        .add(state.player_latency.clone())
        .errors(ApiErrors);
    if let Some(chat) = &state.config.chat {
        let stats = chat.state.stats();
        exposition.add(stats.clone()).errors(stats);
    }
    if let Some(bridge) = &state.config.bridge {
        let (families, errors) = bridge.metrics();
        exposition
            .add(crate::bridge_view::Boxed(families))
            .errors(crate::bridge_view::BoxedErrors(errors));
    }
    if let Some(hls) = &state.config.hls {
        let stats = hls.stats();
        exposition.add(stats.clone()).errors(stats);
    }
    (
        [(header::CONTENT_TYPE, fanout_metrics::CONTENT_TYPE)],
        exposition.encode(),
    )
}
