//! The service: its state handle, the listener that serves HTTP/1.1 and hands upgraded
//! sockets to their tasks, the axum router and [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{AuthError, Identity, Verifier};
use crate::bus::Bus;
use crate::config::ChatConfig;
use crate::history::{Archive, HistoryError};
use crate::node::{Backend, Node};
use crate::redis_ledger::{LedgerError, RedisLedger};

/// Why the service could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Could not bind or serve.
    #[error("chat listener: {0}")]
    Io(#[from] std::io::Error),
    /// Bad JWT configuration.
    #[error("chat auth config: {0}")]
    Auth(#[from] AuthError),
    /// Bad Redis URL.
    #[error("chat redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis failed during an operation.
    #[error("chat ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The archive failed.
    #[error("chat archive: {0}")]
    Archive(#[from] HistoryError),
    /// The server task ended abnormally.
    #[error("chat server task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The chat service state, shared by its router. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChatState {
    node: Arc<Node>,
}

impl ChatState {
    /// Build the state: verify the JWT config, open the archive, connect Redis lazily.
    /// Needs a tokio runtime (the Redis subscriber is spawned here).
    pub fn new(config: ChatConfig) -> Result<Self, ChatError> {
        let verifier = Verifier::new(&config.jwt)?;
        let archive = Archive::open(&config.data_dir)?;
        let (bus, backend) = match &config.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str())?;
                let ledger = RedisLedger::new(client.clone(), config.ledger)?;
                (Bus::redis(client), Backend::Redis(ledger))
            }
            None => (Bus::local(), Backend::Memory),
        };
        let node_id = config.node_id.clone().unwrap_or_else(|| {
            let n: u64 = rand::random();
            format!("{n:016x}")
        });
        let node = Node::new(config, verifier, bus, backend, archive, node_id);
        Ok(ChatState { node: Arc::new(node) })
    }

    /// This node's counters (sockets, rooms, messages, fan-out, errors by code).
    pub fn stats(&self) -> crate::ChatStats {
        self.node.stats.snapshot(self.node.room_count())
    }

    /// Tell the chat when a stream went live (`None`: it is not live), so messages carry
    /// `streamTime`. In cluster mode this is stored in Redis and every node agrees.
    pub async fn set_stream_live(
        &self,
        stream_id: &str,
        live_since: Option<SystemTime>,
    ) -> Result<(), ChatError> {
        let ms = live_since.map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        });
        match &self.node.backend {
            Backend::Memory => self.node.set_live_since(stream_id, ms),
            Backend::Redis(ledger) => ledger.set_live(stream_id, ms).await?,
        }
        Ok(())
    }

    /// Tell the chat whether a stream is private: its room then takes only sockets with a
    /// token for it, and its replay only requests with one. In cluster mode this is stored in
    /// Redis and every node agrees.
    pub async fn set_stream_private(&self, stream_id: &str, private: bool) -> Result<(), ChatError> {
        match &self.node.backend {
            Backend::Memory => self.node.set_private(stream_id, private),
            Backend::Redis(ledger) => ledger.set_private(stream_id, private).await?,
        }
        Ok(())
    }

    /// Archived messages of a stream with stream time in `[from, to)`, oldest first, as JSON
    /// `message` frames.
    pub async fn replay(
        &self,
        stream_id: &str,
        from: Duration,
        to: Duration,
        limit: usize,
    ) -> Result<Vec<String>, ChatError> {
        let archive = self.node.archive.clone();
        let room = stream_id.to_string();
        let (from, to) = (from.as_millis() as u64, to.as_millis() as u64);
        Ok(tokio::task::spawn_blocking(move || archive.replay(&room, from, to, limit)).await??)
    }

    /// Close every socket with 1001 (going away).
    pub fn close_all(&self) {
        self.node.shut_down();
    }

    /// Rooms currently loaded on this node.
    pub fn loaded_rooms(&self) -> usize {
        self.node.room_count()
    }
}

/// How long [`ChatHandle::wait`] lets sockets finish their close after the listener stops.
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A running chat service.
#[derive(Debug)]
pub struct ChatHandle {
    local_addr: SocketAddr,
    state: ChatState,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl ChatHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The service state (stream-live notifications, replay).
    pub fn state(&self) -> &ChatState {
        &self.state
    }

    /// See [`ChatState::set_stream_live`].
    pub async fn set_stream_live(
        &self,
        stream_id: &str,
        live_since: Option<SystemTime>,
    ) -> Result<(), ChatError> {
        self.state.set_stream_live(stream_id, live_since).await
    }

    /// Wait until the service stops (after the shutdown future resolves): the listener has
    /// closed and every socket has been told `shutting_down` and closed (given up to
    /// [`CLOSE_GRACE`]; the listener does not track upgraded connections itself).
    pub async fn wait(self) -> Result<(), ChatError> {
        self.task.await??;
        let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
        while self.state.node.stats.open_sockets() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Bind `config.addr` and serve chat until `shutdown` resolves; then every socket is closed
/// with 1001 and [`ChatHandle::wait`] returns.
pub async fn serve(
    config: ChatConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ChatHandle, ChatError> {
    let addr = config.addr;
    let limits = config.http;
    let state = ChatState::new(config)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, cluster = state.node.bus.is_redis(), "chat listening");
    let app = router(state.clone());
    let node = state.node.clone();
    let task = tokio::spawn(async move {
        accept_loop(listener, app, &node, limits, shutdown).await;
        Ok::<(), std::io::Error>(())
    });
    Ok(ChatHandle {
        local_addr,
        state,
        task,
    })
}

/// Serve HTTP/1.1 with upgrades on every accepted connection until `shutdown`; then close
/// every socket (1001) and give open HTTP exchanges [`CLOSE_GRACE`] to finish.
///
/// The chat runs its own HTTP/1.1 connections rather than `axum::serve` because an upgraded
/// WebSocket must come back as the bare [`TcpStream`](tokio::net::TcpStream): rooms write to it
/// directly ([`crate::socket`]).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    node: &Arc<Node>,
    limits: fanout_httpd::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let http1 = fanout_httpd::http1(&limits);
    let gate = fanout_httpd::Gate::new(limits.max_connections);
    let mut shutdown = std::pin::pin!(shutdown);
    // Every connection holds a receiver; `closed` tells when the last has gone.
    let (conns, conns_rx) = watch::channel(());
    loop {
        let (tcp, _, admitted) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = fanout_httpd::accept(&listener, &gate) => accepted,
        };
        // Chat frames are small and latency matters more than packing them.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = node.shutdown_signal();
        let held = conns_rx.clone();
        let http1 = http1.clone();
        tokio::spawn(async move {
            let _held = held;
            let _admitted = admitted;
            let conn = http1
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let served = tokio::select! {
                _ = conn.as_mut() => true,
                _ = stop.wait_for(|stop| *stop) => false,
            };
            if !served {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        });
    }
    drop(listener);
    drop(conns_rx);
    node.shut_down();
    let _ = tokio::time::timeout(CLOSE_GRACE, conns.closed()).await;
}

/// Routes: `GET /v1/chat/{streamId}` (WebSocket) and `GET /v1/chat/{streamId}/replay`.
pub fn router(state: ChatState) -> Router {
    Router::new()
        .route("/v1/chat/{stream_id}", get(websocket))
        .route("/v1/chat/{stream_id}/replay", get(replay))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `GET /metrics` on the chat listener: this node's counters (for `fanout chat`; `fanout
/// serve` also puts them in its own `/metrics`).
async fn metrics(State(state): State<ChatState>) -> Response {
    let stats = state.stats();
    let mut exposition = fanout_metrics::Exposition::default();
    exposition.add(stats.clone()).errors(stats);
    (
        [(axum::http::header::CONTENT_TYPE, fanout_metrics::CONTENT_TYPE)],
        exposition.encode(),
    )
        .into_response()
}

fn valid_stream_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn websocket(
    State(state): State<ChatState>,
    Path(stream_id): Path<String>,
    Query(query): Query<TokenQuery>,
    mut request: Request,
) -> Response {
    if !valid_stream_id(&stream_id) {
        return (StatusCode::BAD_REQUEST, "bad stream id").into_response();
    }
    let accept = match crate::handshake::accept(request.headers()) {
        Ok(accept) => accept,
        Err((status, reason)) => {
            return (status, [(header::SEC_WEBSOCKET_VERSION, "13")], reason).into_response();
        }
    };
    let Some(upgrade) = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "WebSocket upgrade required").into_response();
    };
    let node = state.node.clone();
    // A bad token still upgrades: browsers cannot read an HTTP status of a failed WebSocket,
    // so the socket is told with an error frame and close code 4001 instead.
    let identity = identify(&node, &stream_id, query.token.as_deref()).await;
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "chat upgrade failed");
                return;
            }
        };
        match upgraded.downcast::<hyper_util::rt::TokioIo<tokio::net::TcpStream>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                crate::connection::run(stream, parts.read_buf, node, stream_id, identity).await;
            }
            Err(_) => tracing::error!("chat WebSocket served outside chat::serve's listener"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// Who `token` names in `stream_id`'s room: `None` for an anonymous reader, an error for a
/// token that is not valid there or for no token on a private stream.
async fn identify(node: &Node, stream_id: &str, token: Option<&str>) -> Option<Result<Identity, AuthError>> {
    match token {
        Some(t) => Some(node.verifier.verify_for(t, stream_id)),
        None if is_private(node, stream_id).await => Some(Err(AuthError::Required)),
        None => None,
    }
}

/// Whether the stream is private. When Redis cannot say, it is taken as private: a chat that
/// cannot check refuses anonymous readers rather than open a private stream's room.
async fn is_private(node: &Node, stream_id: &str) -> bool {
    match &node.backend {
        Backend::Memory => node.is_private(stream_id),
        Backend::Redis(ledger) => ledger.is_private(stream_id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot tell whether a stream is private: taken as private");
            true
        }),
    }
}

#[derive(Debug, Deserialize)]
struct ReplayQuery {
    from: Option<u64>,
    to: Option<u64>,
    limit: Option<usize>,
    token: Option<String>,
}

async fn replay(
    State(state): State<ChatState>,
    Path(stream_id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Response {
    if !valid_stream_id(&stream_id) {
        return (StatusCode::BAD_REQUEST, "bad stream id").into_response();
    }
    // A private stream's archive needs a token for its room (`?token=`).
    if let Some(Err(e)) = identify(&state.node, &stream_id, q.token.as_deref()).await {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            e.to_string(),
        )
            .into_response();
    }
    let from = Duration::from_millis(q.from.unwrap_or(0));
    let to = Duration::from_millis(q.to.unwrap_or(u64::MAX / 2));
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    match state.replay(&stream_id, from, to, limit).await {
        Ok(messages) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            crate::protocol::render_history(&messages),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "chat replay failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "replay failed").into_response()
        }
    }
}
