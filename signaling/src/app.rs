//! Every route in one router: each feature module's `router()` merged, then the layers.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Every route: the API, WHIP, WHEP, and the web pages as the fallback.
pub fn router(state: AppState) -> Router {
    let web = ServeDir::new(&state.config.web_dir).append_index_html_on_directories(true);
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            HeaderName::from_static("accept-patch"),
        ]);
    let (drain, limiter, turn) = (
        state.drain.clone(),
        state.limiter.clone(),
        // Shared: the middleware gets its own copy of its state for every request.
        state.config.turn.clone().map(Arc::new),
    );
    Router::new()
        .merge(crate::health::router())
        .merge(crate::streams::router())
        .merge(crate::whip::router())
        .merge(crate::whep::router())
        .merge(crate::chat_guest::router())
        .merge(crate::metrics::router())
        .merge(crate::ice_servers::router())
        .merge(crate::viewers::router())
        .with_state(state)
        .fallback_service(web)
        // SDP offers with simulcast are a few KiB; nothing we accept is larger than this.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(drain, crate::drain::gate))
        // Inside the CORS layer: preflights are not counted, and a 429 can be read by a page.
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            crate::rate_limit::limit,
        ))
        .layer(cors)
        // Outside the CORS layer, which answers every OPTIONS itself.
        .layer(axum::middleware::from_fn_with_state(
            turn,
            crate::endpoint::endpoint_options,
        ))
        .layer(TraceLayer::new_for_http())
}
