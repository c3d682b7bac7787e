//! Who may publish over RTMP, SRT and RTSP, and how such a publication joins the stream's
//! lifecycle.
//!
//! The stream key decides the stream, with the same stored hash WHIP checks. The room side of
//! a publication (conversion, RTP into the room) is the bridge's, which signaling does not
//! depend on: the binary wires it in as [`RoomSources`]. A started source is a publisher
//! session like a WHIP one: it goes live at its first media, replaces an older publisher of
//! either kind, resumes the stream within the reconnect grace, and is disconnected by a key
//! rotation or a stop.

use std::sync::Arc;

use ingest::gate::BoxFuture;
use ingest::{Gate, PublishRequest, Refusal, Sink};
use serde_json::Value;
use sfu::{SessionId, SessionKind};
use tracing::{info, warn};

use crate::auth::hash_key;
use crate::state::AppState;

/// The room side of ingest, as the binary wires it in.
pub trait RoomSources: std::fmt::Debug + Send + Sync + 'static {
    /// Start a source publishing into `stream`'s room: its SFU session id and its sink.
    fn start(&self, stream: &str) -> Result<(SessionId, Box<dyn Sink>), String>;
    /// What the stream's health shows about a running source, `None` without one.
    fn health(&self, stream: &str) -> Option<Value>;
}

/// The [`Gate`] every ingest protocol asks.
#[derive(Clone)]
pub struct IngestGate {
    state: AppState,
    sources: Arc<dyn RoomSources>,
}

impl IngestGate {
    /// A gate for `state`'s streams, starting sources with `sources`.
    pub fn new(state: AppState, sources: Arc<dyn RoomSources>) -> IngestGate {
        IngestGate { state, sources }
    }

    async fn admit(&self, request: PublishRequest) -> Result<Box<dyn Sink>, Refusal> {
        if self.state.draining() {
            return Err(Refusal::Unavailable("the server is shutting down".into()));
        }
        let (row, protocol) = match &request {
            PublishRequest::Key { protocol, key, .. } => {
                let row = self
                    .state
                    .db
                    .find_by_key_hash(hash_key(key))
                    .await
                    .map_err(|e| Refusal::Unavailable(format!("database: {e}")))?;
                (row.ok_or(Refusal::BadKey)?, protocol.as_str())
            }
            PublishRequest::Pull { stream } => {
                let row = self
                    .state
                    .db
                    .get(stream)
                    .await
                    .map_err(|e| Refusal::Unavailable(format!("database: {e}")))?;
                (
                    row.ok_or_else(|| Refusal::Unavailable("the stream was deleted".into()))?,
                    "rtsp",
                )
            }
        };
        let (session, sink) = self.sources.start(&row.id).map_err(|e| {
            warn!(stream = %row.id, "{protocol} source not started: {e}");
            Refusal::Unavailable(e)
        })?;
        // Before the sink is handed back, so before any media: the SFU reports the source
        // connected at its first packet, and the lifecycle must know the session by then.
        self.state
            .streams
            .session_created(&row.id, row.status, SessionKind::Publisher, session);
        info!(stream = %row.id, %session, "{protocol} publication accepted");
        Ok(sink)
    }
}

impl Gate for IngestGate {
    fn open(&self, request: PublishRequest) -> BoxFuture<'_, Result<Box<dyn Sink>, Refusal>> {
        Box::pin(self.admit(request))
    }

    fn check(&self, request: &PublishRequest) -> BoxFuture<'_, Result<(), Refusal>> {
        let key = match request {
            PublishRequest::Key { key, .. } => Some(hash_key(key)),
            PublishRequest::Pull { .. } => None,
        };
        Box::pin(async move {
            let Some(hash) = key else { return Ok(()) };
            match self.state.db.find_by_key_hash(hash).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(Refusal::BadKey),
                Err(e) => Err(Refusal::Unavailable(format!("database: {e}"))),
            }
        })
    }
}
