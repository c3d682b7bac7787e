//! While the server drains (see `state/drain.rs`), new WHIP/WHEP sessions are refused.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::Drain;

/// What a client refused during the drain is told to wait before trying again (by then a
/// load balancer has usually stopped routing to this server).
const RETRY_AFTER_SECS: u64 = 2;

/// Middleware: while draining, new WHIP/WHEP sessions are refused with `503` and
/// `Retry-After`; everything else (trickle, DELETE, the API, media) goes on.
pub(crate) async fn gate(State(drain): State<Drain>, req: Request, next: Next) -> Response {
    if drain.is_draining() && crate::rate_limit::creates_session(req.method(), req.uri().path()) {
        return ApiError::Draining {
            retry_after: RETRY_AFTER_SECS,
        }
        .into_response();
    }
    next.run(req).await
}
