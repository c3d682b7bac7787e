//! Signaling's state, as narrow services that know no HTTP routes: route modules use the
//! services they need through [`AppState`], middleware gets only its own.
//!
//! | service | owns |
//! |---|---|
//! | [`Streams`] | each running stream's [`Lifecycle`](crate::Lifecycle), driven by SFU events |
//! | `Changes` | what a lifecycle change sets off (SQLite, webhooks, chat), in order, on a task |
//! | [`Viewers`] | WHEP sessions per stream and viewer counts |
//! | [`Resources`] | WHIP/WHEP sessions as HTTP resources |
//! | [`PrivateStreams`] | which streams are private (the HLS guard's question) |
//! | [`Drain`] | the graceful shutdown |
//! | [`Database`] | SQLite, on a thread of its own |
//!
//! Locks guard memory only and are let go before any I/O: SQLite runs on the database
//! thread and async callers await it; webhooks and chat are told by the changes task.

mod changes;
mod drain;
mod private_streams;
mod resources;
mod streams;
mod viewers;

use std::sync::Arc;
use std::time::Duration;

use sfu::SfuHandle;
use tokio::sync::broadcast;
use tracing::{info, warn};

pub(crate) use changes::Changes;
pub(crate) use drain::Drain;
pub(crate) use private_streams::PrivateStreams;
pub(crate) use resources::{Resource, Resources};
pub(crate) use streams::Streams;
pub(crate) use viewers::Viewers;

use crate::config::SignalConfig;
use crate::db::{Database, Db};
use crate::error::ApiError;
use crate::player_latency::PlayerLatency;
use crate::rate_limit::Limiters;
use crate::stream_event::StreamEvent;
use crate::webhook::Webhooks;

/// Everything handlers share: the configuration and the services. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) config: Arc<SignalConfig>,
    pub(crate) db: Database,
    pub(crate) sfu: SfuHandle,
    pub(crate) streams: Streams,
    pub(crate) viewers: Viewers,
    pub(crate) resources: Resources,
    pub(crate) private: PrivateStreams,
    pub(crate) webhooks: Option<Webhooks>,
    pub(crate) limiter: Limiters,
    pub(crate) drain: Drain,
    /// Latency the players report in their heartbeats.
    pub(crate) player_latency: Arc<PlayerLatency>,
    /// Stream lifecycle events, once stored.
    pub(crate) events: broadcast::Sender<StreamEvent>,
    /// RTSP cameras pulled into streams, once ingest is started.
    pub(crate) pulls: Arc<std::sync::OnceLock<crate::pulls::Pulls>>,
}

impl AppState {
    /// Start ingest: the gate RTMP and SRT listeners ask, with `sources` starting the room
    /// side, and the RTSP pulls of every stream that has a `pullUrl`.
    pub async fn start_ingest(
        &self,
        sources: Arc<dyn crate::ingest_gate::RoomSources>,
    ) -> Arc<dyn ingest::Gate> {
        let gate = crate::ingest_gate::IngestGate::new(self.clone(), sources);
        let pulls = crate::pulls::Pulls::new(gate.clone());
        match self.db.pulled().await {
            Ok(list) => {
                for (stream, url) in list {
                    pulls.sync(&stream, Some(&url));
                }
            }
            Err(e) => warn!("cannot read the pulled streams: {e}"),
        }
        let _ = self.pulls.set(pulls);
        Arc::new(gate)
    }

    /// Make `stream`'s RTSP pull match its `pullUrl` (`None`: stop it).
    pub(crate) fn sync_pull(&self, stream: &str, url: Option<&str>) {
        if let Some(p) = self.pulls.get() {
            p.sync(stream, url);
        }
    }

    /// Move `db` to its own thread, build the services, and start following the SFU's events
    /// and sweeping viewer counts (needs a tokio runtime).
    pub async fn new(db: Db, sfu: SfuHandle, config: SignalConfig) -> AppState {
        let db = Database::start(db);
        match db.end_all_live().await {
            Ok(n) if n > 0 => info!("{n} stream(s) that were live before the restart have ended"),
            Ok(_) => {}
            Err(e) => warn!("cannot reset stream states: {e}"),
        }
        let chat = config.chat.as_ref().map(|c| c.state.clone());
        let private = match db.private_ids().await {
            Ok(ids) => PrivateStreams::new(ids, chat),
            Err(e) => {
                warn!("cannot read private streams: {e}");
                PrivateStreams::default()
            }
        };
        let webhooks = config.webhooks.as_ref().map(Webhooks::start);
        let limiter = Limiters::new(config.rate_limit, config.trust_proxy);
        let viewers = Viewers::new(config.audience.clone(), db.clone());
        let resources = Resources::default();
        let (events, _) = broadcast::channel(1024);
        let changes = Changes::start(
            db.clone(),
            viewers.clone(),
            webhooks.clone(),
            config.chat.clone(),
            events.clone(),
        );
        let streams = Streams::new(
            config.grace,
            sfu.clone(),
            resources.clone(),
            viewers.clone(),
            changes,
        );
        let drain = Drain::new(sfu.clone(), streams.clone(), resources.clone(), webhooks.clone());
        viewers.start_sweeping();
        streams.follow_sfu();
        AppState {
            config: Arc::new(config),
            db,
            sfu,
            streams,
            viewers,
            resources,
            private,
            webhooks,
            limiter,
            drain,
            player_latency: Arc::default(),
            events,
            pulls: Arc::default(),
        }
    }

    /// Follow streams going live, reconnecting and ending (each sent once it is stored).
    pub fn stream_events(&self) -> broadcast::Receiver<StreamEvent> {
        self.events.subscribe()
    }

    /// The database, for the binary's own streams (the test pattern).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Whether [`AppState::drain`] has started.
    pub fn draining(&self) -> bool {
        self.drain.is_draining()
    }

    /// Drain (see `state/drain.rs`): returns when the server may stop, at the latest
    /// `window` from now (plus a second when webhooks are still going out).
    pub async fn drain(&self, window: Duration) {
        self.drain.run(window).await;
    }

    /// A source outside the SFU (the built-in test pattern) started feeding stream `id`,
    /// which exists: it goes live as on a first WHIP publish (status, `stream.live` webhook,
    /// chat's stream time) and ends with the server's drain. Returns once that is stored.
    pub async fn source_started(&self, id: &str) -> Result<(), ApiError> {
        let stored = self.db.get(id).await?.ok_or(ApiError::NotFound)?.status;
        self.streams.source_started(id, stored).await;
        Ok(())
    }

    /// A viewer from outside signaling (a chat socket) is watching `stream`: marked when the
    /// stream exists, so names of streams that do not exist never reach the counter. Returns
    /// at once (needs a tokio runtime).
    pub fn mark_known(&self, stream: &str, viewer: &str) {
        self.viewers.mark_known(stream, viewer);
    }
}
