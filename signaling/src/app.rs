//! Shared state, the router, and the task that follows SFU events.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, Method, header};
use sfu::{SessionId, SessionKind, SfuEvent, SfuHandle};
use tokio::sync::broadcast::error::RecvError;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use tracing::{info, warn};

use crate::db::Db;
use crate::lifecycle::{Lifecycle, Status};

/// Signaling settings.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    /// Token for the admin API.
    pub admin_token: String,
    /// Base URL put in stream responses; when absent, taken from the request's `Host`.
    pub public_url: Option<String>,
    /// Where the web pages are.
    pub web_dir: PathBuf,
    /// How long a stream waits for its publisher to come back.
    pub grace: Duration,
    /// The chat service, when it runs in this process.
    pub chat: Option<crate::chat_link::ChatLink>,
    /// TURN servers to offer clients, when configured.
    pub turn: Option<crate::turn::TurnConfig>,
    /// Where stream lifecycle webhooks go, when configured.
    pub webhooks: Option<crate::webhook::WebhookConfig>,
    /// Per-client limit on the API and on WHIP/WHEP session creation; `None`: unlimited.
    pub rate_limit: Option<crate::token_bucket::RateLimit>,
    /// Count clients by `X-Forwarded-For` (set only behind a reverse proxy that sets it).
    pub trust_proxy: bool,
}

/// A WHIP or WHEP session as an HTTP resource.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) stream: String,
    pub(crate) session: SessionId,
    pub(crate) kind: SessionKind,
    pub(crate) etag: String,
}

/// Runtime state of a stream that has sessions.
#[derive(Debug)]
pub(crate) struct StreamLive {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) viewers: HashSet<SessionId>,
}

pub(crate) struct Shared {
    pub(crate) db: Db,
    pub(crate) sfu: SfuHandle,
    pub(crate) config: SignalConfig,
    pub(crate) live: Mutex<HashMap<String, StreamLive>>,
    pub(crate) resources: Mutex<HashMap<String, Resource>>,
    pub(crate) webhooks: Option<crate::webhook::Webhooks>,
    pub(crate) limiter: Option<crate::rate_limit::RateLimiter>,
    pub(crate) drain: crate::drain::Drain,
}

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    /// Build the state and start following the SFU's events (needs a tokio runtime).
    pub fn new(db: Db, sfu: SfuHandle, config: SignalConfig) -> AppState {
        match db.end_all_live() {
            Ok(n) if n > 0 => info!("{n} stream(s) that were live before the restart have ended"),
            Ok(_) => {}
            Err(e) => warn!("cannot reset stream states: {e}"),
        }
        let webhooks = config.webhooks.as_ref().map(crate::webhook::Webhooks::start);
        let limiter = config.rate_limit.map(crate::rate_limit::RateLimiter::new);
        let state = AppState {
            inner: Arc::new(Shared {
                db,
                sfu,
                config,
                live: Mutex::new(HashMap::new()),
                resources: Mutex::new(HashMap::new()),
                webhooks,
                limiter,
                drain: Default::default(),
            }),
        };
        let follower = state.clone();
        let mut events = state.inner.sfu.events();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => follower.on_event(e),
                    Err(RecvError::Lagged(n)) => warn!("missed {n} SFU events"),
                    Err(RecvError::Closed) => break,
                }
            }
        });
        state
    }

    /// The base URL for links in responses.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.inner.config.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        format!("{proto}://{host}")
    }

    /// Lifecycle and viewer count of a stream, creating the runtime entry from the stored status.
    pub(crate) fn with_live<R>(&self, id: &str, stored: Status, f: impl FnOnce(&mut StreamLive) -> R) -> R {
        let mut live = lock(&self.inner.live);
        let entry = live.entry(id.to_string()).or_insert_with(|| StreamLive {
            lifecycle: Lifecycle::new(stored, self.inner.config.grace),
            viewers: HashSet::new(),
        });
        f(entry)
    }

    /// Status, reconnecting flag and viewers of a stream.
    pub(crate) fn runtime(&self, id: &str, stored: Status) -> (Status, bool, usize) {
        match lock(&self.inner.live).get(id) {
            Some(l) => (l.lifecycle.status(), l.lifecycle.reconnecting(), l.viewers.len()),
            None => (stored, false, 0),
        }
    }

    fn on_event(&self, e: SfuEvent) {
        match e {
            SfuEvent::Connected {
                session, room, kind, ..
            } => {
                let mut live = lock(&self.inner.live);
                let Some(l) = live.get_mut(room.as_str()) else {
                    return;
                };
                match kind {
                    SessionKind::Publisher => {
                        if let Some(s) = l.lifecycle.publisher_connected(session) {
                            self.store_status(room.as_str(), s);
                        }
                    }
                    SessionKind::Subscriber => {
                        l.viewers.insert(session);
                    }
                }
            }
            SfuEvent::Closed { session, room, kind } => {
                lock(&self.inner.resources).retain(|_, r| r.session != session);
                let mut live = lock(&self.inner.live);
                let Some(l) = live.get_mut(room.as_str()) else {
                    return;
                };
                match kind {
                    SessionKind::Publisher => {
                        let was = l.lifecycle.status();
                        if let Some(deadline) = l.lifecycle.publisher_closed(session, Instant::now()) {
                            info!(stream = %room, "publisher gone; waiting for it to come back");
                            self.webhook(room.as_str(), crate::webhook::EventKind::Reconnecting);
                            let state = self.clone();
                            let id = room.to_string();
                            tokio::spawn(async move {
                                tokio::time::sleep_until(deadline.into()).await;
                                state.expire(&id);
                            });
                        }
                        if was != Status::Ended && l.lifecycle.status() == Status::Ended {
                            self.store_status(room.as_str(), Status::Ended);
                        }
                    }
                    SessionKind::Subscriber => {
                        l.viewers.remove(&session);
                    }
                }
            }
        }
    }

    fn expire(&self, id: &str) {
        let mut live = lock(&self.inner.live);
        let Some(l) = live.get_mut(id) else { return };
        if let Some(s) = l.lifecycle.poll(Instant::now()) {
            info!(stream = %id, "stream ended");
            self.inner.sfu.room_ended(id);
            self.store_status(id, s);
        }
    }

    pub(crate) fn store_status(&self, id: &str, s: Status) {
        if let Err(e) = self.inner.db.set_status(id, s) {
            warn!(stream = %id, "cannot store status: {e}");
        }
        if let Some(kind) = crate::webhook::EventKind::for_status(s) {
            self.webhook(id, kind);
        }
        if let Some(link) = &self.inner.config.chat {
            crate::chat_link::notify_live(link, id, s == Status::Live);
        }
    }
}

/// Every route: the API, WHIP, WHEP, and the web pages as the fallback.
pub fn router(state: AppState) -> Router {
    let state_for_options = state.clone();
    let web = ServeDir::new(&state.inner.config.web_dir).append_index_html_on_directories(true);
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
    let state_for_limits = state.clone();
    Router::new()
        .merge(crate::health::router())
        .merge(crate::streams::router())
        .merge(crate::whip::router())
        .merge(crate::whep::router())
        .merge(crate::chat_link::router())
        .merge(crate::metrics::router())
        .merge(crate::turn::router())
        .with_state(state)
        .fallback_service(web)
        // SDP offers with simulcast are a few KiB; nothing we accept is larger than this.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state_for_limits.clone(),
            crate::drain::gate,
        ))
        // Inside the CORS layer: preflights are not counted, and a 429 can be read by a page.
        .layer(axum::middleware::from_fn_with_state(
            state_for_limits,
            crate::rate_limit::limit,
        ))
        .layer(cors)
        // Outside the CORS layer, which answers every OPTIONS itself.
        .layer(axum::middleware::from_fn_with_state(
            state_for_options,
            crate::resources::endpoint_options,
        ))
        .layer(TraceLayer::new_for_http())
}
