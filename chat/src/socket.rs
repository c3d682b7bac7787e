//! A chat socket's write side: the TCP stream after the WebSocket handshake, written from two
//! sides.
//!
//! - **The room writes straight into it.** `Socket::send` makes a non-blocking write of an
//!   already encoded frame (one fan-out frame is the same bytes for every socket, since server
//!   frames are not masked). No task is woken per socket per frame: a room with 10,000 sockets
//!   costs 10,000 `write` calls per fan-out frame and nothing else. A write that would block,
//!   or lands only in part, leaves the rest in the socket's outbox and wakes its task; later
//!   frames queue behind it, so the order is kept.
//! - **The socket's task** (`connection.rs`) drains the outbox when the socket is
//!   writable again, and writes its own replies through the same outbox, in order.
//! - **Slow consumers**: a socket whose outbox already holds `outbox_frames` frames, or that
//!   cannot drain it within `write_timeout`, is closed: the frames it has not started are
//!   dropped, then it is sent `slow_consumer` and a close frame (1008). Memory never grows with
//!   a slow reader.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Frames handed to the kernel in one vectored write at most.
const MAX_COALESCE: usize = 64;

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
    pub(crate) async fn flush(&self) -> io::Result<()> {
        loop {
            if self.state() == OutState::Behind || self.drain()? {
                return Ok(());
            }
            self.stream.writable().await?;
        }
    }

    /// Take no more frames, drop the queued ones not yet started, and queue `last`.
    pub(crate) fn finish(&self, last: &[Bytes]) {
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

    /// The stream, for the task's reads.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Resolves when a send asks the task to drain the outbox or to close the socket.
    pub(crate) fn woken(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// What the task does when woken: drain the outbox, allowing the socket `write_timeout`
    /// to take it all.
    pub(crate) async fn service(&self, write_timeout: Duration) -> Serviced {
        match self.state() {
            OutState::Failed => return Serviced::Gone,
            OutState::Behind => return Serviced::SlowConsumer,
            OutState::Open | OutState::Closing => {}
        }
        match tokio::time::timeout(write_timeout, self.flush()).await {
            Ok(Ok(())) => Serviced::Drained,
            Ok(Err(_)) => Serviced::Gone,
            // Its buffers have been full for the whole timeout: it is told (if it ever reads
            // again within the close wait) and closed.
            Err(_) => Serviced::SlowConsumer,
        }
    }
}

/// How a woken socket stands after [`Socket::service`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serviced {
    /// Everything queued is written.
    Drained,
    /// A write failed: the peer is gone.
    Gone,
    /// Its outbox overflowed, or it took no writes for the whole timeout: tell it and close.
    SlowConsumer,
}
