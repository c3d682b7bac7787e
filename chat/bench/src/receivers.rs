//! The receiving sockets: plain TCP sockets that speak just enough WebSocket to read a chat
//! room, on one epoll loop (mio) per thread.
//!
//! A room of 10,000 sockets at 100 messages/s is up to a million deliveries a second, and the
//! load generator shares the machine with the server it measures. A task per socket through
//! tokio-tungstenite costs a wake-up, a poll and an allocated message per frame; here a thread
//! takes the ready sockets from `epoll_wait` in batches, reads each into its own buffer and scans
//! the frames in place. Latencies go into a per-thread histogram, merged once at the end.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

use super::{Counters, Hist, now_us};

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;

/// The text of every benchmark message starts with this, followed by its send time in µs.
const MARK: &[u8] = b"\"text\":\"b ";
const ERROR: &[u8] = b"\"type\":\"error\"";

static MARK_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(MARK));
static ERROR_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(ERROR));

/// Where the next frame in `buf` ends: `(opcode, payload start, frame end)`, or `None` while
/// it is incomplete. Server frames are unmasked; a masked one is skipped over all the same.
pub fn frame_at(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut start): (u64, usize) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    if b1 & 0x80 != 0 {
        start += 4;
    }
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (buf.len() >= end).then_some((b0 & 0x0f, start, end))
}

/// Call `f` with the send time of every benchmark message in a text frame's payload.
pub fn send_times(payload: &[u8], mut f: impl FnMut(u64)) {
    for at in MARK_FINDER.find_iter(payload) {
        let digits = &payload[at + MARK.len()..];
        let mut sent = 0u64;
        let mut any = false;
        for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
            sent = sent.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            any = true;
        }
        if any {
            f(sent);
        }
    }
}

/// One receiving socket.
struct Receiver {
    stream: mio::net::TcpStream,
    node: usize,
    /// Bytes read and not yet parsed (at most one partial frame between reads).
    pending: Vec<u8>,
    /// Still registered (not closed by the server or by an error).
    open: bool,
}

/// What one thread counted, per node.
struct Tally {
    hist: Vec<Hist>,
    errors: Vec<u64>,
    dropped: Vec<u64>,
}

/// Start `threads` threads that connect the receivers `(index, node address)` between them,
/// wait until each socket has its hello and history, and read until `running` is cleared.
/// Returns once every socket is in the room; joining the handles merges what they counted into
/// `counters` (indexed by node).
pub fn start(
    receivers: Vec<(usize, String)>,
    threads: usize,
    counters: Vec<Arc<Counters>>,
    running: Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let threads = threads.max(1);
    let mut shares: Vec<Vec<(usize, String)>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, r) in receivers.into_iter().enumerate() {
        shares[k % threads].push(r);
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handles: Vec<JoinHandle<()>> = shares
        .into_iter()
        .map(|share| {
            let (counters, running, ready) = (counters.clone(), running.clone(), ready_tx.clone());
            std::thread::spawn(move || {
                let sockets: Vec<Receiver> = share
                    .iter()
                    .map(|(node, addr)| connect(*node, addr))
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("a receiver cannot join: {e}"));
                let _ = ready.send(());
                // Dropped now, so that a thread that panicked while connecting (and never
                // sent) shows up as a closed channel below instead of a wait for ever.
                drop(ready);
                let tally = read_until_stopped(sockets, counters.len(), &counters, &running)
                    .unwrap_or_else(|e| panic!("receiver loop: {e}"));
                for (node, c) in counters.iter().enumerate() {
                    c.hist.lock().expect("hist").merge(&tally.hist[node]);
                    c.errors.fetch_add(tally.errors[node], Ordering::Relaxed);
                    c.dropped.fetch_add(tally.dropped[node], Ordering::Relaxed);
                }
            })
        })
        .collect();
    drop(ready_tx);
    for _ in 0..handles.len() {
        ready_rx
            .recv()
            .expect("a receiver thread failed to connect its sockets");
    }
    handles
}

/// Open a WebSocket on `addr` and read its first two frames (hello and history).
fn connect(node: usize, addr: &str) -> io::Result<Receiver> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET /v1/chat/bench HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: Y2hhdC1iZW5jaC1zb2NrZXQ=\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut frames = 0;
    let mut upgraded = false;
    while frames < 2 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if !upgraded {
            let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") else {
                continue;
            };
            if !buf.starts_with(b"HTTP/1.1 101") {
                let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                return Err(io::Error::other(format!("upgrade refused: {head}")));
            }
            buf.drain(..i + 4);
            upgraded = true;
        }
        while let Some((_, _, end)) = frame_at(&buf) {
            buf.drain(..end);
            frames += 1;
        }
    }
    s.set_nonblocking(true)?;
    Ok(Receiver {
        stream: mio::net::TcpStream::from_std(s),
        node,
        pending: buf,
        open: true,
    })
}

fn read_until_stopped(
    mut sockets: Vec<Receiver>,
    nodes: usize,
    counters: &[Arc<Counters>],
    running: &AtomicBool,
) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    for (k, r) in sockets.iter_mut().enumerate() {
        poll.registry()
            .register(&mut r.stream, Token(k), Interest::READABLE)?;
    }
    let mut tally = Tally {
        hist: (0..nodes).map(|_| Hist::new()).collect(),
        errors: vec![0; nodes],
        dropped: vec![0; nodes],
    };
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut delivered = vec![0u64; nodes];
    while running.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(Duration::from_millis(50))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = now_us();
        for event in events.iter() {
            let k = event.token().0;
            let r = &mut sockets[k];
            if !r.open {
                continue;
            }
            let closed = drain(r, &mut chunk);
            let node = r.node;
            let mut consumed = 0;
            let mut close_frame = false;
            while let Some((op, start, end)) = frame_at(&r.pending[consumed..]) {
                let payload = &r.pending[consumed + start..consumed + end];
                match op {
                    OP_TEXT => {
                        send_times(payload, |sent| {
                            tally.hist[node].record(now.saturating_sub(sent));
                            delivered[node] += 1;
                        });
                        if ERROR_FINDER.find(payload).is_some() {
                            tally.errors[node] += 1;
                        }
                    }
                    OP_CLOSE => close_frame = true,
                    _ => {}
                }
                consumed += end;
            }
            r.pending.drain(..consumed);
            if closed || close_frame {
                r.open = false;
                let _ = poll.registry().deregister(&mut r.stream);
                if running.load(Ordering::Relaxed) {
                    tally.dropped[node] += 1;
                }
            }
        }
        // The driver watches the delivered count to know when the last messages are in.
        for (node, d) in delivered.iter_mut().enumerate() {
            if *d > 0 {
                counters[node].delivered.fetch_add(*d, Ordering::Relaxed);
                *d = 0;
            }
        }
    }
    Ok(tally)
}

/// Read everything the socket has into its pending buffer; `true` once the peer closed it.
fn drain(r: &mut Receiver, chunk: &mut [u8]) -> bool {
    loop {
        match r.stream.read(chunk) {
            Ok(0) => return true,
            Ok(n) => r.pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whole_or_not_at_all() {
        let mut buf = vec![0x81, 5];
        buf.extend_from_slice(b"hello");
        assert_eq!(frame_at(&buf), Some((OP_TEXT, 2, 7)));
        assert_eq!(frame_at(&buf[..6]), None);
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(frame_at(&long), Some((OP_TEXT, 4, 260)));
        assert_eq!(frame_at(&long[..3]), None);
        let masked = [0x88, 0x80, 1, 2, 3, 4];
        assert_eq!(frame_at(&masked), Some((OP_CLOSE, 6, 6)));
        assert_eq!(frame_at(&[]), None);
    }

    #[test]
    fn send_times_are_read_from_a_batch() {
        let payload = br#"[{"type":"message","text":"b 123","id":1},{"text":"b 4567"},{"text":"b x"}]"#;
        let mut seen = Vec::new();
        send_times(payload, |t| seen.push(t));
        assert_eq!(seen, [123, 4567]);
    }
}
