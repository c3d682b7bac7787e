//! What the binary tells signaling: tokens, URLs, and the services beside it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};

use crate::chat_link::ChatLink;
use crate::rate_limiter::RateLimit;
use crate::turn::TurnConfig;
use crate::viewer_auth::ViewerAuth;
use crate::webhook::WebhookConfig;

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
    pub chat: Option<ChatLink>,
    /// TURN servers to offer clients, when configured.
    pub turn: Option<TurnConfig>,
    /// Viewer tokens and signed HLS paths for private streams.
    pub viewer_auth: Arc<ViewerAuth>,
    /// Ingest endpoints other than WHIP running beside this server, for stream responses.
    pub ingest: IngestUrls,
    /// Where viewer counts live (in process, or Redis shared with other nodes).
    pub audience: audience::Audience,
    /// Where stream lifecycle webhooks go, when configured.
    pub webhooks: Option<WebhookConfig>,
    /// Per-client limit on the API and on WHIP/WHEP session creation; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Count clients by `X-Forwarded-For` (set only behind a reverse proxy that sets it).
    pub trust_proxy: bool,
    /// The LL-HLS origin served by this process, for its counters in `/metrics`.
    pub hls: Option<hls::Origin>,
    /// The LL-HLS bridge of this process, for streams' health and `/metrics`.
    pub bridge: Option<Arc<dyn crate::bridge_view::BridgeView>>,
    /// Where RTMP, SRT and RTSP publications go (the binary wires the bridge's ingest in).
    pub sources: Option<Arc<dyn crate::ingest_gate::RoomSources>>,
}

/// The ports of the RTMP and SRT ingest, when they run (`None`: the stream response says
/// `null`). URLs are made with the host of the server's base URL.
#[derive(Debug, Clone, Default)]
pub struct IngestUrls {
    /// The RTMP listener's port (`rtmp://host:PORT/live/{key}`).
    pub rtmp_port: Option<u16>,
    /// The SRT listener's port (`srt://host:PORT?streamid=publish:{key}`).
    pub srt_port: Option<u16>,
}

impl SignalConfig {
    /// The base URL for links in responses.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.public_url {
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
}
