//! Shared state, the router, and the task that follows SFU events.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
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
use crate::error::ApiError;
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
    /// Viewer tokens and signed HLS paths for private streams.
    pub viewer_auth: Arc<crate::viewer_auth::ViewerAuth>,
    /// Ingest endpoints other than WHIP running beside this server, for stream responses.
    pub ingest: IngestUrls,
    /// Where viewer counts live (in process, or Redis shared with other nodes).
    pub audience: audience::Audience,
    /// Where stream lifecycle webhooks go, when configured.
    pub webhooks: Option<crate::webhook::WebhookConfig>,
    /// Per-client limit on the API and on WHIP/WHEP session creation; `None`: unlimited.
    pub rate_limit: Option<crate::token_bucket::RateLimit>,
    /// Count clients by `X-Forwarded-For` (set only behind a reverse proxy that sets it).
    pub trust_proxy: bool,
    /// The LL-HLS origin served by this process, for its counters in `/metrics`.
    pub hls: Option<hls::Origin>,
}

/// Base URLs of the RTMP and SRT ingest, when they run (`None`: the stream response says
/// `null`). A stream's URL is the base plus its id.
#[derive(Debug, Clone, Default)]
pub struct IngestUrls {
    /// e.g. `rtmp://host:1935/live`.
    pub rtmp: Option<String>,
    /// e.g. `srt://host:9000`.
    pub srt: Option<String>,
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
    /// Ids of private streams, read on every HLS request (kept in step with the database).
    pub(crate) private: RwLock<HashSet<String>>,
    /// Streams with viewer marks, and their current count as of the last sweep.
    pub(crate) watched: Mutex<HashMap<String, u64>>,
    /// This process's name in viewer ids (WHEP session ids are only unique per process).
    pub(crate) node_id: String,
    pub(crate) webhooks: Option<crate::webhook::Webhooks>,
    pub(crate) limiter: Option<crate::rate_limit::RateLimiter>,
    pub(crate) drain: crate::drain::Drain,
    /// Latency the players report in their heartbeats.
    pub(crate) player_latency: crate::metrics::PlayerLatency,
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
        let private = match db.private_ids() {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                warn!("cannot read private streams: {e}");
                HashSet::new()
            }
        };
        let webhooks = config.webhooks.as_ref().map(crate::webhook::Webhooks::start);
        let limiter = config.rate_limit.map(crate::rate_limit::RateLimiter::new);
        let state = AppState {
            inner: Arc::new(Shared {
                private: RwLock::new(private),
                db,
                sfu,
                config,
                live: Mutex::new(HashMap::new()),
                resources: Mutex::new(HashMap::new()),
                watched: Mutex::new(HashMap::new()),
                node_id: format!("{:08x}", rand::random::<u32>()),
                webhooks,
                limiter,
                drain: Default::default(),
                player_latency: Default::default(),
            }),
        };
        let sweeper = state.clone();
        let every = state.inner.config.audience.window().remark_every();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sweeper.sweep_viewers().await;
            }
        });
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

    /// Whether the stream is private (HLS needs a signed path, WHEP a viewer token).
    pub(crate) fn is_private(&self, id: &str) -> bool {
        self.inner
            .private
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    pub(crate) fn set_private(&self, id: &str, private: bool) {
        let mut set = self.inner.private.write().unwrap_or_else(|p| p.into_inner());
        if private {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    /// A deleted stream leaves nothing behind.
    pub(crate) fn forget(&self, id: &str) {
        self.set_private(id, false);
        lock(&self.inner.live).remove(id);
        lock(&self.inner.resources).retain(|_, r| r.stream != id);
    }

    /// Kick the publisher and end the stream now, without a reconnect grace. False when the
    /// stream is not live.
    pub(crate) fn stop(&self, id: &str, stored: Status) -> bool {
        let publisher = {
            let mut live = lock(&self.inner.live);
            let l = live.entry(id.to_string()).or_insert_with(|| StreamLive {
                lifecycle: Lifecycle::new(stored, self.inner.config.grace),
                viewers: HashSet::new(),
            });
            if l.lifecycle.status() != Status::Live {
                return false;
            }
            l.lifecycle.stop()
        };
        lock(&self.inner.resources).retain(|_, r| !(r.stream == id && r.kind == SessionKind::Publisher));
        if let Some(session) = publisher {
            // Gone already (ICE timeout) is fine: the stream ends either way.
            let _ = self.inner.sfu.close(session);
        }
        info!(stream = %id, "stream stopped");
        self.inner.sfu.room_ended(id);
        self.store_status(id, Status::Ended);
        true
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
                        drop(live);
                        self.mark(room.as_str(), &self.whep_viewer(session));
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

    /// A source outside the SFU (the built-in test pattern) started feeding stream `id`,
    /// which exists: it goes live as on a first WHIP publish (status, `stream.live` webhook,
    /// chat's stream time) and ends with the server's drain.
    pub fn source_started(&self, id: &str) -> Result<(), ApiError> {
        let stored = self.inner.db.get(id)?.ok_or(ApiError::NotFound)?.status;
        if let Some(s) = self.with_live(id, stored, |l| l.lifecycle.source_started()) {
            self.store_status(id, s);
        }
        Ok(())
    }

    pub(crate) fn store_status(&self, id: &str, s: Status) {
        if let Err(e) = self.inner.db.set_status(id, s) {
            warn!(stream = %id, "cannot store status: {e}");
        }
        self.store_audience(id, s);
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
        .merge(crate::viewers::router())
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
