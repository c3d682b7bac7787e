//! Graceful shutdown. On SIGTERM the server drains:
//!
//! ```text
//! draining: /readyz 503, new WHIP/WHEP sessions 503 + Retry-After, open sessions go on
//!   -> every session gone, or the drain window over
//!   -> streams end (status ended, `stream.ended` webhooks), remaining sessions closed
//!   -> queued webhooks delivered, until the window is over (at least MIN_FLUSH)
//!   -> the HTTP server stops, then chat (its sockets told `shutting_down`)
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use crate::app::{AppState, lock};
use crate::error::ApiError;

/// Undelivered webhooks get at least this long once the streams ended, so even an
/// immediate shutdown (`--drain-secs 0`) tries to say so.
const MIN_FLUSH: Duration = Duration::from_secs(1);

/// What a client refused during the drain is told to wait before trying again (by then a
/// load balancer has usually stopped routing to this server).
const RETRY_AFTER_SECS: u64 = 2;

/// Whether the server is draining.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: AtomicBool,
}

impl AppState {
    /// Whether [`AppState::drain`] has started.
    pub fn draining(&self) -> bool {
        self.inner.drain.draining.load(Ordering::Relaxed)
    }

    /// WebRTC sessions the SFU holds.
    fn sessions(&self) -> usize {
        self.inner.sfu.worker_loads().iter().sum()
    }

    /// Drain (see the module docs): returns when the server may stop, at the latest
    /// `window` from now (plus a second when webhooks are still going out).
    pub async fn drain(&self, window: Duration) {
        let deadline = Instant::now() + window;
        self.inner.drain.draining.store(true, Ordering::Relaxed);
        // Subscribed before counting, so a session closing in between is not missed.
        let mut events = self.inner.sfu.events();
        info!(
            sessions = self.sessions(),
            "draining: no new sessions; open ones have {window:?}"
        );
        loop {
            let open = self.sessions();
            if open == 0 {
                break;
            }
            match tokio::time::timeout_at(deadline.into(), events.recv()).await {
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) => break,
                Err(_) => {
                    info!("{open} session(s) still open at the end of the drain; closing them");
                    break;
                }
            }
        }
        let ended = self.end_all_streams();
        if ended > 0 {
            info!("{ended} stream(s) ended by the shutdown");
        }
        let flush_until = deadline.max(Instant::now() + MIN_FLUSH);
        if !self.flush_webhooks(flush_until).await {
            warn!("shutting down with webhooks not yet delivered");
        }
    }

    /// End every live stream now and close every session. Returns how many streams ended.
    fn end_all_streams(&self) -> usize {
        let mut ended = 0;
        {
            let mut live = lock(&self.inner.live);
            for (id, l) in live.iter_mut() {
                if let Some(s) = l.lifecycle.end() {
                    self.inner.sfu.room_ended(id);
                    self.store_status(id, s);
                    ended += 1;
                }
            }
        }
        let sessions: Vec<_> = lock(&self.inner.resources)
            .drain()
            .map(|(_, r)| r.session)
            .collect();
        for s in sessions {
            // Already gone is fine.
            let _ = self.inner.sfu.close(s);
        }
        ended
    }
}

/// Middleware: while draining, new WHIP/WHEP sessions are refused with `503` and
/// `Retry-After`; everything else (trickle, DELETE, the API, media) goes on.
pub(crate) async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.draining() && crate::rate_limit::creates_session(req.method(), req.uri().path()) {
        return ApiError::Draining {
            retry_after: RETRY_AFTER_SECS,
        }
        .into_response();
    }
    next.run(req).await
}
