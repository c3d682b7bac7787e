//! The WebSocket adapter: one task per socket, thin on purpose.
//!
//! It checks frames (type, size, rate), verifies `auth` tokens, forwards parsed frames to the
//! room driver, and writes what the room sends: direct replies from a small bounded queue and
//! fan-out frames from the room's broadcast ring. Whatever is ready is written with one flush
//! (one syscall). A socket that lags the ring, fills its reply queue, or cannot flush within
//! `ChatConfig::write_timeout` is sent `slow_consumer` and closed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::auth::{AuthError, Identity};
use crate::driver::Command;
use crate::protocol::{ClientFrame, ErrorCode, MAX_FRAME_BYTES, ServerFrame, parse_client_frame};
use crate::server::Node;
use crate::viewers::SocketMark;

/// Direct replies (errors, history, pong) a socket may have queued.
const REPLY_QUEUE: usize = 32;
/// Frames written per flush at most.
const MAX_COALESCE: usize = 64;

/// Close codes used by the service.
pub mod close_code {
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Binary frame received.
    pub const UNSUPPORTED: u16 = 1003;
    /// Flood or slow consumer.
    pub const POLICY: u16 = 1008;
    /// Frame over 4 KiB.
    pub const TOO_BIG: u16 = 1009;
    /// Room overloaded.
    pub const TRY_AGAIN: u16 = 1013;
    /// Invalid token in `?token=`.
    pub const UNAUTHORIZED: u16 = 4001;
}

enum Flow {
    Continue,
    Close(u16, ServerFrame),
    /// The peer is gone (a write failed): nothing to tell it.
    Gone,
}

/// Token bucket on client frames.
struct Inbound {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
    strikes: u32,
}

impl Inbound {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Inbound {
            tokens: rate * 2.0,
            rate,
            burst: rate * 2.0,
            last: Instant::now(),
            strikes: 0,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

pub(crate) async fn run(
    mut ws: WebSocket,
    node: Arc<Node>,
    room: String,
    identity: Option<Result<Identity, AuthError>>,
) {
    let identity = match identity {
        Some(Err(e)) => {
            tracing::debug!(error = %e, "chat socket with invalid token");
            let err = ServerFrame::error(ErrorCode::Unauthorized, "invalid token");
            close(&mut ws, &node, close_code::UNAUTHORIZED, err).await;
            return;
        }
        Some(Ok(i)) => Some(i),
        None => None,
    };
    let conn = node.next_conn();
    let mut viewer = SocketMark::start(
        node.config.viewer_marks.as_ref(),
        &room,
        &node.node_id,
        conn,
        identity.as_ref(),
    );
    let (reply_tx, mut replies) = mpsc::channel(REPLY_QUEUE);
    let Some((room_handle, mut frames)) = node.join(&room, conn, identity, reply_tx) else {
        let err = ServerFrame::error(ErrorCode::Busy, "room overloaded, try again");
        close(&mut ws, &node, close_code::TRY_AGAIN, err).await;
        return;
    };
    node.stats.socket_opened();
    let commands = room_handle.commands;
    let mut shutdown = node.shutdown_signal();
    let mut inbound = Inbound::new(node.config.inbound_per_sec);
    let slow = || ServerFrame::error(ErrorCode::SlowConsumer, "too far behind; closing");

    loop {
        let flow = tokio::select! {
            biased;
            _ = shutdown.changed() => Flow::Close(
                close_code::GOING_AWAY,
                ServerFrame::error(ErrorCode::ShuttingDown, "server shutting down"),
            ),
            reply = replies.recv() => match reply {
                Some(first) => write(&mut ws, &node, first, &mut replies, &mut frames).await,
                None => Flow::Close(close_code::POLICY, slow()),
            },
            frame = frames.recv() => match frame {
                Ok(first) => write(&mut ws, &node, first, &mut replies, &mut frames).await,
                Err(RecvError::Lagged(_)) => Flow::Close(close_code::POLICY, slow()),
                Err(RecvError::Closed) => Flow::Close(
                    close_code::GOING_AWAY,
                    ServerFrame::error(ErrorCode::ShuttingDown, "room closed"),
                ),
            },
            _ = SocketMark::next(&mut viewer) => Flow::Continue,
            msg = ws.recv() => match msg {
                Some(Ok(msg)) => on_message(&node, conn, &commands, &mut inbound, &mut ws, msg).await,
                // Closed or broken by the peer: nothing to tell it.
                _ => break,
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Close(code, frame) => {
                close(&mut ws, &node, code, frame).await;
                break;
            }
            Flow::Gone => break,
        }
    }
    node.stats.socket_closed();
    // The room must learn we left, or it would count us forever; waiting for queue space is
    // bounded by the room draining its queue.
    let _ = commands.send(Command::Leave { conn }).await;
}

/// Write `first` plus whatever else is ready, then flush once.
async fn write(
    ws: &mut WebSocket,
    node: &Node,
    first: Utf8Bytes,
    replies: &mut mpsc::Receiver<Utf8Bytes>,
    frames: &mut broadcast::Receiver<Utf8Bytes>,
) -> Flow {
    let slow = || {
        Flow::Close(
            close_code::POLICY,
            ServerFrame::error(ErrorCode::SlowConsumer, "too far behind; closing"),
        )
    };
    let result = tokio::time::timeout(node.config.write_timeout, async {
        ws.feed(Message::Text(first)).await?;
        let mut n = 1;
        while n < MAX_COALESCE {
            let next = match replies.try_recv() {
                Ok(r) => r,
                Err(_) => match frames.try_recv() {
                    Ok(f) => f,
                    Err(TryRecvError::Lagged(_)) => return Ok(false),
                    Err(_) => break,
                },
            };
            ws.feed(Message::Text(next)).await?;
            n += 1;
        }
        ws.flush().await?;
        Ok::<bool, axum::Error>(true)
    })
    .await;
    match result {
        Ok(Ok(true)) => {
            node.stats.socket_write();
            Flow::Continue
        }
        Ok(Ok(false)) | Err(_) => slow(),
        Ok(Err(_)) => Flow::Gone,
    }
}

async fn on_message(
    node: &Node,
    conn: u64,
    commands: &mpsc::Sender<Command>,
    inbound: &mut Inbound,
    ws: &mut WebSocket,
    msg: Message,
) -> Flow {
    let text = match msg {
        Message::Text(t) => t,
        Message::Binary(_) => {
            return Flow::Close(
                close_code::UNSUPPORTED,
                ServerFrame::error(ErrorCode::BinaryNotSupported, "only JSON text frames"),
            );
        }
        // Pings are answered by the WebSocket layer; close frames end the stream next.
        _ => return Flow::Continue,
    };
    if text.len() > MAX_FRAME_BYTES {
        return Flow::Close(
            close_code::TOO_BIG,
            ServerFrame::error(
                ErrorCode::FrameTooLarge,
                format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
            ),
        );
    }
    if !inbound.allow() {
        if inbound.strikes > 200 {
            return Flow::Close(
                close_code::POLICY,
                ServerFrame::error(ErrorCode::Flood, "flooding; closing"),
            );
        }
        // Warn once per burst of refusals, so a flood does not turn into an echo of errors.
        if inbound.strikes == 1 {
            let err = ServerFrame::Error {
                code: ErrorCode::Flood,
                message: "too many frames; slow down".into(),
                retry_after: Some(1000),
            };
            return send_now(ws, node, err).await;
        }
        return Flow::Continue;
    }
    let frame = match parse_client_frame(&text) {
        Ok(f) => f,
        Err(e) => return send_now(ws, node, ServerFrame::error(e.code(), e.to_string())).await,
    };
    let command = match frame {
        ClientFrame::Auth { token } => match node.verifier.verify(&token) {
            Ok(identity) => Command::Identify { conn, identity },
            Err(e) => {
                let err = ServerFrame::error(ErrorCode::Unauthorized, e.to_string());
                return send_now(ws, node, err).await;
            }
        },
        frame => Command::Frame { conn, frame },
    };
    if commands.try_send(command).is_err() {
        let err = ServerFrame::Error {
            code: ErrorCode::Busy,
            message: "room busy; not sent".into(),
            retry_after: Some(100),
        };
        return send_now(ws, node, err).await;
    }
    Flow::Continue
}

async fn send_now(ws: &mut WebSocket, node: &Node, frame: ServerFrame) -> Flow {
    count_error(node, &frame);
    let sent = tokio::time::timeout(
        node.config.write_timeout,
        ws.send(Message::Text(frame.to_json().into())),
    )
    .await;
    match sent {
        Ok(Ok(())) => Flow::Continue,
        Ok(Err(_)) => Flow::Gone,
        Err(_) => Flow::Close(
            close_code::POLICY,
            ServerFrame::error(ErrorCode::SlowConsumer, "too far behind; closing"),
        ),
    }
}

fn count_error(node: &Node, frame: &ServerFrame) {
    if let ServerFrame::Error { code, .. } = frame {
        node.stats.error(*code);
    }
}

/// Tell the peer why (best effort, bounded), close with `code`, and wait briefly for the
/// peer's close so unread input does not turn our close into a TCP reset.
async fn close(ws: &mut WebSocket, node: &Node, code: u16, frame: ServerFrame) {
    count_error(node, &frame);
    let reason = match &frame {
        ServerFrame::Error { code, .. } => serde_json::to_string(code).unwrap_or_default(),
        _ => String::new(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        ws.send(Message::Text(frame.to_json().into())).await?;
        ws.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.trim_matches('"').to_string().into(),
        })))
        .await
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(msg)) = ws.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
