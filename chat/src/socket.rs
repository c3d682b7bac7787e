//! A chat socket: the TCP stream after the WebSocket handshake, written from two sides.
//!
//! - **The room writes straight into it.** [`Socket::send`] makes a non-blocking write of an
//!   already encoded frame (one fan-out frame is the same bytes for every socket, since server
//!   frames are not masked). No task is woken per socket per frame: a room with 10,000 sockets
//!   costs 10,000 `write` calls per fan-out frame and nothing else. A write that would block,
//!   or lands only in part, leaves the rest in the socket's outbox and wakes its task; later
//!   frames queue behind it, so the order is kept.
//! - **The socket's task** reads and checks client frames (type, size, rate), verifies `auth`
//!   tokens, forwards parsed frames to the room driver, answers pings, and drains the outbox
//!   when the socket is writable again.
//! - **Slow consumers**: a socket whose outbox already holds `outbox_frames` frames, or that
//!   cannot drain it within `write_timeout`, is closed: the frames it has not started are
//!   dropped, then it is sent `slow_consumer` and a close frame (1008). Memory never grows with
//!   a slow reader.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::auth::{AuthError, Identity};
use crate::driver::Command;
use crate::protocol::{ClientFrame, ErrorCode, MAX_FRAME_BYTES, ServerFrame, parse_client_frame};
use crate::server::Node;
use crate::viewers::SocketMark;
use crate::wire::{self, Decoder, Incoming, WireError};

/// Frames handed to the kernel in one vectored write at most.
const MAX_COALESCE: usize = 64;
/// How long a closing socket may take to send its last frames, and to answer our close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Close codes used by the service.
pub mod close_code {
    /// Normal closure (answering the client's close).
    pub const NORMAL: u16 = 1000;
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

/// One socket's write side, shared by its room (fan-out frames, replies) and its task.
#[derive(Debug)]
pub(crate) struct Socket {
    stream: TcpStream,
    out: Mutex<Outbox>,
    /// Wakes the socket's task: its outbox needs draining, or the socket must close.
    wake: Notify,
    /// Frames the outbox may hold before the socket is a slow consumer.
    limit: usize,
}

#[derive(Debug, Default)]
struct Outbox {
    /// Buffers waiting for the socket, each with the number of WebSocket frames it holds.
    queue: VecDeque<(Bytes, usize)>,
    /// WebSocket frames in `queue`.
    frames: usize,
    /// The first queued frame is partly written: it must be finished whatever else is
    /// dropped, or the stream would be corrupt.
    head_started: bool,
    state: OutState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum OutState {
    #[default]
    Open,
    /// The outbox overflowed: tell the client and close.
    Behind,
    /// A write failed: the peer is gone.
    Failed,
    /// The task is closing the socket: take nothing more.
    Closing,
}

impl Socket {
    pub(crate) fn new(stream: TcpStream, limit: usize) -> Self {
        Socket {
            stream,
            out: Mutex::default(),
            wake: Notify::new(),
            limit: limit.max(1),
        }
    }

    /// Write `bytes` (`frames` WebSocket frames back to back) now, or queue them behind what
    /// is still waiting. A socket that takes no more (it fell behind, broke, or is closing)
    /// drops them; its task, woken, closes it.
    pub(crate) fn send(&self, bytes: &Bytes, frames: usize) {
        let mut out = self.out.lock();
        if out.state != OutState::Open {
            return;
        }
        if !out.queue.is_empty() {
            // Its task was woken when the queue started and drains it in order.
            if out.frames + frames > self.limit {
                out.state = OutState::Behind;
                drop(out);
                self.wake.notify_one();
                return;
            }
            out.queue.push_back((bytes.clone(), frames));
            out.frames += frames;
            return;
        }
        match self.stream.try_write(bytes) {
            Ok(n) if n == bytes.len() => return,
            Ok(n) => {
                out.queue.push_back((bytes.slice(n..), frames));
                out.frames += frames;
                out.head_started = n > 0;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.queue.push_back((bytes.clone(), frames));
                out.frames += frames;
            }
            Err(_) => out.state = OutState::Failed,
        }
        drop(out);
        self.wake.notify_one();
    }

    /// Write queued frames until the outbox is empty (true) or the socket would block.
    fn drain(&self) -> io::Result<bool> {
        let mut out = self.out.lock();
        while !out.queue.is_empty() {
            let slices: Vec<IoSlice<'_>> = out
                .queue
                .iter()
                .take(MAX_COALESCE)
                .map(|(b, _)| IoSlice::new(b))
                .collect();
            let written = match self.stream.try_write_vectored(&slices) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => Err(e),
            };
            let mut n = match written {
                Ok(n) => n,
                Err(e) => {
                    out.state = OutState::Failed;
                    return Err(e);
                }
            };
            while n > 0 {
                let (head, _) = out.queue.front_mut().expect("written bytes were queued");
                if n >= head.len() {
                    n -= head.len();
                    let (_, frames) = out.queue.pop_front().expect("the head");
                    out.frames -= frames;
                    out.head_started = false;
                } else {
                    head.advance(n);
                    out.head_started = true;
                    n = 0;
                }
            }
        }
        Ok(true)
    }

    /// Drain the outbox, waiting for the socket to become writable as often as needed. Stops
    /// early when the socket fell behind (it is closed next, dropping what is queued).
    async fn flush(&self) -> io::Result<()> {
        loop {
            if self.state() == OutState::Behind || self.drain()? {
                return Ok(());
            }
            self.stream.writable().await?;
        }
    }

    /// Take no more frames, drop the queued ones not yet started, and queue `last`.
    fn finish(&self, last: &[Bytes]) {
        let mut out = self.out.lock();
        out.state = OutState::Closing;
        let keep = usize::from(out.head_started && !out.queue.is_empty());
        out.queue.truncate(keep);
        out.queue.extend(last.iter().map(|b| (b.clone(), 1)));
        out.frames = out.queue.iter().map(|(_, n)| n).sum();
    }

    fn state(&self) -> OutState {
        self.out.lock().state
    }

    /// What the task does when woken by a send.
    async fn service(&self, node: &Node) -> Flow {
        match self.state() {
            OutState::Failed => return Flow::Gone,
            OutState::Behind => return Flow::Close(close_code::POLICY, slow_consumer()),
            OutState::Open | OutState::Closing => {}
        }
        match tokio::time::timeout(node.config.write_timeout, self.flush()).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Gone,
            // Its buffers have been full for the whole timeout: it is told (if it ever reads
            // again within the close wait) and closed.
            Err(_) => Flow::Close(close_code::POLICY, slow_consumer()),
        }
    }
}

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
            tracing::debug!(error = %e, "chat socket with invalid token");
            let err = ServerFrame::error(ErrorCode::Unauthorized, "invalid token");
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
    let Some(commands) = node.join(&room, conn, identity, socket.clone()) else {
        let err = ServerFrame::error(ErrorCode::Busy, "room overloaded, try again");
        close(&socket, &mut reader, &node, close_code::TRY_AGAIN, err).await;
        return;
    };
    node.stats.socket_opened();
    let mut shutdown = node.shutdown_signal();
    let mut inbound = Inbound::new(node.config.inbound_per_sec);

    loop {
        let flow = tokio::select! {
            biased;
            _ = shutdown.changed() => Flow::Close(
                close_code::GOING_AWAY,
                ServerFrame::error(ErrorCode::ShuttingDown, "server shutting down"),
            ),
            _ = socket.wake.notified() => socket.service(&node).await,
            _ = SocketMark::next(&mut viewer) => Flow::Continue,
            msg = reader.next(&socket.stream) => match msg {
                Ok(msg) => on_message(&node, conn, &commands, &mut inbound, &socket, msg),
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
    conn: u64,
    commands: &mpsc::Sender<Command>,
    inbound: &mut Inbound,
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
            return if inbound.allow() {
                send_now(socket, &wire::pong(&payload))
            } else {
                Flow::Continue
            };
        }
        Incoming::Pong => return Flow::Continue,
        Incoming::Close(_) => return Flow::Closed,
    };
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
            return send_error(socket, node, err);
        }
        return Flow::Continue;
    }
    let frame = match parse_client_frame(&text) {
        Ok(f) => f,
        Err(e) => return send_error(socket, node, ServerFrame::error(e.code(), e.to_string())),
    };
    let command = match frame {
        ClientFrame::Auth { token } => match node.verifier.verify(&token) {
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
            match reader.next(&socket.stream).await {
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
