//! A chat socket's task: it reads and checks client frames (type, size, frame budget),
//! verifies `auth` tokens, forwards parsed frames to the room driver, answers pings, drains
//! the socket's outbox when woken ([`Socket::service`]), and closes the socket with a reason.
//!
//! It joins the room through the node, which starts the room's driver if the room is not
//! loaded.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::auth::{AuthError, Identity};
use crate::command::Command;
use crate::node::Node;
use crate::protocol::{ClientFrame, ErrorCode, MAX_FRAME_BYTES, ServerFrame, parse_client_frame};
use crate::rate_limit::{FrameBudget, Spend};
use crate::socket::{Serviced, Socket, close_code};
use crate::viewers::SocketMark;
use crate::wire::{self, Decoder, Incoming, WireError};

/// How long a closing socket may take to send its last frames, and to answer our close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

fn slow_consumer() -> ServerFrame {
    ServerFrame::error(ErrorCode::SlowConsumer, "too far behind; closing")
}

/// The read side: bytes from the client and the decoder that turns them into messages.
struct Reader {
    buf: BytesMut,
    decoder: Decoder,
}

enum ReadError {
    /// Not a valid WebSocket stream.
    Wire(WireError),
    /// End of stream or a socket error: the peer is gone.
    Gone,
}

impl Reader {
    /// The next message from the client. Cancel-safe: what has been read stays in `self`.
    async fn next(&mut self, stream: &TcpStream) -> Result<Incoming, ReadError> {
        loop {
            if let Some(msg) = self.decoder.decode(&mut self.buf).map_err(ReadError::Wire)? {
                if self.buf.is_empty() {
                    // An idle socket keeps no read buffer.
                    self.buf = BytesMut::new();
                }
                return Ok(msg);
            }
            stream.readable().await.map_err(|_| ReadError::Gone)?;
            // Declared after the await, so it is not kept in every idle socket's future.
            let mut chunk = [0u8; 4096];
            match stream.try_read(&mut chunk) {
                Ok(0) => return Err(ReadError::Gone),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(ReadError::Gone),
            }
        }
    }
}

enum Flow {
    Continue,
    Close(u16, ServerFrame),
    /// The client closed: answer its close and stop.
    Closed,
    /// The peer is gone (a read or write failed): nothing to tell it.
    Gone,
}

/// Serve one upgraded WebSocket: `early` holds bytes the HTTP layer read past the handshake.
pub(crate) async fn run(
    stream: TcpStream,
    early: Bytes,
    node: Arc<Node>,
    room: String,
    identity: Option<Result<Identity, AuthError>>,
) {
    let socket = Arc::new(Socket::new(stream, node.config.outbox_frames));
    let mut reader = Reader {
        buf: BytesMut::from(&early[..]),
        decoder: Decoder::new(MAX_FRAME_BYTES),
    };
    let identity = match identity {
        Some(Err(e)) => {
            tracing::debug!(error = %e, "chat socket refused");
            let message = match e {
                // Say why a token for another room, or none on a private stream, was refused;
                // a bad token gets no detail.
                AuthError::WrongStream | AuthError::Required => e.to_string(),
                _ => "invalid token".to_string(),
            };
            let err = ServerFrame::error(ErrorCode::Unauthorized, message);
            close(&socket, &mut reader, &node, close_code::UNAUTHORIZED, err).await;
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
    let start = |generation| crate::driver::spawn(node.clone(), room.clone(), generation);
    let Some(commands) = node.join(&room, conn, identity, socket.clone(), start) else {
        let err = ServerFrame::error(ErrorCode::Busy, "room overloaded, try again");
        close(&socket, &mut reader, &node, close_code::TRY_AGAIN, err).await;
        return;
    };
    node.stats.socket_opened();
    let mut shutdown = node.shutdown_signal();
    let mut budget = FrameBudget::new(node.config.inbound_per_sec);

    loop {
        let flow = tokio::select! {
            biased;
            _ = shutdown.changed() => Flow::Close(
                close_code::GOING_AWAY,
                ServerFrame::error(ErrorCode::ShuttingDown, "server shutting down"),
            ),
            _ = socket.woken() => match socket.service(node.config.write_timeout).await {
                Serviced::Drained => Flow::Continue,
                Serviced::Gone => Flow::Gone,
                Serviced::SlowConsumer => Flow::Close(close_code::POLICY, slow_consumer()),
            },
            _ = SocketMark::next(&mut viewer) => Flow::Continue,
            msg = reader.next(socket.stream()) => match msg {
                Ok(msg) => on_message(&node, &room, conn, &commands, &mut budget, &socket, msg),
                Err(ReadError::Wire(e)) => wire_error(e),
                Err(ReadError::Gone) => Flow::Gone,
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Close(code, frame) => {
                close(&socket, &mut reader, &node, code, frame).await;
                break;
            }
            Flow::Closed => {
                socket.finish(&[wire::close(close_code::NORMAL, "")]);
                let _ = tokio::time::timeout(CLOSE_WAIT, socket.flush()).await;
                break;
            }
            Flow::Gone => break,
        }
    }
    node.stats.socket_closed();
    // The room must learn we left, or it would count us (and write to us) forever; waiting
    // for queue space is bounded by the room draining its queue.
    let _ = commands.send(Command::Leave { conn }).await;
}

fn wire_error(e: WireError) -> Flow {
    let code = match e {
        WireError::TooBig(_) => ErrorCode::FrameTooLarge,
        _ => ErrorCode::BadFrame,
    };
    let message = match e {
        WireError::TooBig(_) => format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
        _ => e.to_string(),
    };
    Flow::Close(e.close_code(), ServerFrame::error(code, message))
}

fn on_message(
    node: &Node,
    room: &str,
    conn: u64,
    commands: &mpsc::Sender<Command>,
    budget: &mut FrameBudget,
    socket: &Socket,
    msg: Incoming,
) -> Flow {
    let text = match msg {
        Incoming::Text(t) => t,
        Incoming::Binary => {
            return Flow::Close(
                close_code::UNSUPPORTED,
                ServerFrame::error(ErrorCode::BinaryNotSupported, "only JSON text frames"),
            );
        }
        Incoming::Ping(payload) => {
            return match budget.spend() {
                Spend::Allowed => send_now(socket, &wire::pong(&payload)),
                Spend::Warn | Spend::Drop | Spend::Close => Flow::Continue,
            };
        }
        Incoming::Pong => return Flow::Continue,
        Incoming::Close(_) => return Flow::Closed,
    };
    match budget.spend() {
        Spend::Allowed => {}
        Spend::Warn => {
            let err = ServerFrame::Error {
                code: ErrorCode::Flood,
                message: "too many frames; slow down".into(),
                retry_after: Some(1000),
            };
            return send_error(socket, node, err);
        }
        Spend::Drop => return Flow::Continue,
        Spend::Close => {
            return Flow::Close(
                close_code::POLICY,
                ServerFrame::error(ErrorCode::Flood, "flooding; closing"),
            );
        }
    }
    let frame = match parse_client_frame(&text) {
        Ok(f) => f,
        Err(e) => return send_error(socket, node, ServerFrame::error(e.code(), e.to_string())),
    };
    let command = match frame {
        ClientFrame::Auth { token } => match node.verifier.verify_for(&token, room) {
            Ok(identity) => Command::Identify { conn, identity },
            Err(e) => {
                let err = ServerFrame::error(ErrorCode::Unauthorized, e.to_string());
                return send_error(socket, node, err);
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
        return send_error(socket, node, err);
    }
    Flow::Continue
}

fn send_error(socket: &Socket, node: &Node, frame: ServerFrame) -> Flow {
    count_error(node, &frame);
    send_now(socket, &wire::text(&frame.to_json()))
}

/// Write a frame from the socket's own task, in order with the room's. If the socket takes
/// no more frames, the wake-up `send` left closes it on the task's next turn.
fn send_now(socket: &Socket, frame: &Bytes) -> Flow {
    socket.send(frame, 1);
    Flow::Continue
}

fn count_error(node: &Node, frame: &ServerFrame) {
    if let ServerFrame::Error { code, .. } = frame {
        node.stats.error(*code);
    }
}

/// Tell the peer why (best effort, bounded), close with `code`, and wait briefly for the
/// peer's close so unread input does not turn our close into a TCP reset.
async fn close(socket: &Socket, reader: &mut Reader, node: &Node, code: u16, frame: ServerFrame) {
    count_error(node, &frame);
    let reason = match &frame {
        ServerFrame::Error { code, .. } => serde_json::to_string(code).unwrap_or_default(),
        _ => String::new(),
    };
    socket.finish(&[
        wire::text(&frame.to_json()),
        wire::close(code, reason.trim_matches('"')),
    ]);
    if !matches!(tokio::time::timeout(CLOSE_WAIT, socket.flush()).await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            match reader.next(socket.stream()).await {
                Ok(Incoming::Close(_)) | Err(ReadError::Gone) => break,
                // Frames sent before the client saw our close, or bytes we cannot parse (we
                // are closing because of them): read on until its close or the deadline.
                Ok(_) => {}
                Err(ReadError::Wire(WireError::TooBig(_))) => {}
                Err(ReadError::Wire(_)) => {
                    reader.buf.clear();
                    reader.decoder = Decoder::new(MAX_FRAME_BYTES);
                }
            }
        }
    })
    .await;
}
