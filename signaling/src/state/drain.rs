//! Graceful shutdown. On SIGTERM the server drains:
//!
//! ```text
//! draining: /readyz 503, new WHIP/WHEP sessions 503 + Retry-After, open sessions go on
//!   -> every session gone, or the drain window over
//!   -> streams end (status ended, `stream.ended` webhooks), remaining sessions closed
//!   -> queued webhooks delivered, until the window is over (at least MIN_FLUSH)
//!   -> the HTTP server stops, then chat (its sockets told `shutting_down`)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sfu::SfuHandle;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::resources::Resources;
use super::streams::Streams;
use crate::webhook::Webhooks;

/// Undelivered webhooks get at least this long once the streams ended, so even an
/// immediate shutdown (`--drain-secs 0`) tries to say so.
const MIN_FLUSH: Duration = Duration::from_secs(1);

/// The drain, and whether it has started. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Drain {
    draining: Arc<AtomicBool>,
    sfu: SfuHandle,
    streams: Streams,
    resources: Resources,
    webhooks: Option<Webhooks>,
}

impl Drain {
    pub(crate) fn new(
        sfu: SfuHandle,
        streams: Streams,
        resources: Resources,
        webhooks: Option<Webhooks>,
    ) -> Drain {
        Drain {
            draining: Arc::default(),
            sfu,
            streams,
            resources,
            webhooks,
        }
    }

    /// Whether [`Drain::run`] has started.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// WebRTC sessions the SFU holds.
    fn sessions(&self) -> usize {
        self.sfu.worker_loads().iter().sum()
    }

    /// Drain (see the module docs): returns when the server may stop, at the latest
    /// `window` from now (plus a second when webhooks are still going out).
    pub(crate) async fn run(&self, window: Duration) {
        let deadline = Instant::now() + window;
        self.draining.store(true, Ordering::Relaxed);
        // Subscribed before counting, so a session closing in between is not missed.
        let mut events = self.sfu.events();
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
        let ended = self.streams.end_all().await;
        if ended > 0 {
            info!("{ended} stream(s) ended by the shutdown");
        }
        for session in self.resources.take_all() {
            // Already gone is fine.
            let _ = self.sfu.close(session);
        }
        let flush_until = deadline.max(Instant::now() + MIN_FLUSH);
        let flushed = match &self.webhooks {
            Some(w) => w.flush(flush_until).await,
            None => true,
        };
        if !flushed {
            warn!("shutting down with webhooks not yet delivered");
        }
    }
}
