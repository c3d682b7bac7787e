//! One worker thread: the I/O loop around a [`sfu_core::Worker`].

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use sfu_core::{Command, Datagram, Input, Output, PeerMessage, SfuEvent, Worker, WorkerId};
use tracing::{debug, info, warn};

use crate::batch_send::SendBatch;
use crate::metrics::{DelayTally, Lag, Metrics, Pressure, Published};
use crate::recv_stamped::{self, StampedReceiver};

/// What arrives in a worker's inbox.
#[derive(Debug)]
pub(crate) enum Inbox {
    Command(Command),
    Peer(PeerMessage),
}

/// The sending side of a worker's inbox, shared with the control plane and other workers.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pub(crate) tx: SyncSender<Inbox>,
    pub(crate) waker: Arc<Waker>,
}

impl Mailbox {
    /// Queue without waking (the caller wakes once per batch).
    pub(crate) fn push(&self, m: Inbox) -> Result<(), Inbox> {
        match self.tx.try_send(m) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        }
    }

    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            warn!("cannot wake worker: {e}");
        }
    }
}

pub(crate) const WAKER: Token = Token(usize::MAX);
/// Datagrams read from one socket before looking at the inbox again.
const READ_BATCH: usize = 256;
/// Viewers waiting for their packets before the loop sends, even mid-batch: one publisher
/// packet of a large room fills a sendmmsg batch by itself, and waiting for more only adds delay.
const FLUSH_VIEWERS: usize = 64;

pub(crate) struct WorkerThread {
    pub(crate) id: WorkerId,
    pub(crate) worker: Worker,
    pub(crate) poll: Poll,
    pub(crate) sockets: Vec<(UdpSocket, SocketAddr)>,
    pub(crate) inbox: Receiver<Inbox>,
    pub(crate) peers: Vec<Mailbox>,
    /// Session events, to the thread that applies them to the control plane's maps.
    pub(crate) events: std::sync::mpsc::Sender<SfuEvent>,
    /// Datagrams waiting to be sent, one batch per socket.
    pub(crate) outgoing: Vec<SendBatch>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tally: DelayTally,
    /// The worker's counters as last published, and the bytes since.
    pub(crate) published: Published,
    /// This worker's lag, for the control plane.
    pub(crate) pressure: Arc<Pressure>,
    pub(crate) window: LagWindow,
}

/// How often a worker reports its lag.
const LAG_WINDOW: Duration = Duration::from_secs(1);

/// The lag a worker measures over one window.
#[derive(Debug)]
pub(crate) struct LagWindow {
    start: Instant,
    oldest: Duration,
    /// The worker's late drops when the window started.
    late_drops: u64,
    overloaded: bool,
}

impl LagWindow {
    pub(crate) fn new(now: Instant) -> Self {
        LagWindow {
            start: now,
            oldest: Duration::ZERO,
            late_drops: 0,
            overloaded: false,
        }
    }

    /// Close the window once it is due: report it, log a change of state, start the next.
    fn roll(&mut self, now: Instant, late_drops: u64, pressure: &Pressure, worker: WorkerId) {
        if now.saturating_duration_since(self.start) < LAG_WINDOW {
            return;
        }
        let lag = Lag {
            oldest: self.oldest,
            late_drops: late_drops - self.late_drops,
        };
        pressure.set(lag);
        if lag.overloaded() != self.overloaded {
            self.overloaded = lag.overloaded();
            if self.overloaded {
                warn!(worker = worker.0, oldest = ?lag.oldest, late_drops = lag.late_drops, "media worker cannot keep up: new sessions go to other workers");
            } else {
                info!(worker = worker.0, "media worker keeps up again");
            }
        }
        *self = LagWindow {
            start: now,
            oldest: Duration::ZERO,
            late_drops,
            overloaded: self.overloaded,
        };
    }
}

impl WorkerThread {
    pub(crate) fn register(poll: &Poll, sockets: &mut [(UdpSocket, SocketAddr)]) -> std::io::Result<()> {
        for (i, (s, _)) in sockets.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE)?;
            recv_stamped::enable(s)?;
        }
        Ok(())
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 2048];
        let mut receiver = StampedReceiver::default();
        let mut next_timeout = Instant::now();
        let mut to_wake = vec![false; self.peers.len()];
        loop {
            let wait = next_timeout.saturating_duration_since(Instant::now());
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(wait.max(Duration::from_micros(100))))
                && e.kind() != ErrorKind::Interrupted
            {
                warn!(worker = self.id.0, "poll failed: {e}");
            }

            // Commands and packets from other workers.
            while let Ok(m) = self.inbox.try_recv() {
                let now = Instant::now();
                match m {
                    Inbox::Command(c) => self.worker.handle_input(Input::Command(now, c)),
                    Inbox::Peer(p) => self.worker.handle_input(Input::Peer(now, p)),
                }
                if self.worker.pending_viewers() >= FLUSH_VIEWERS {
                    self.flush(&mut to_wake, &mut next_timeout);
                }
            }

            // Everything the sockets hold (edge-triggered: read until WouldBlock).
            for i in 0..self.sockets.len() {
                let mut n = 0;
                loop {
                    let (socket, local) = &self.sockets[i];
                    match receiver.recv(socket, &mut buf) {
                        Ok(d) => {
                            self.published.bytes_in += d.len as u64;
                            self.worker.handle_input(Input::Datagram(
                                d.now,
                                Datagram {
                                    source: d.source,
                                    destination: *local,
                                    data: &buf[..d.len],
                                    arrived: d.arrived,
                                },
                            ));
                            n += 1;
                            if n % READ_BATCH == 0 || self.worker.pending_viewers() >= FLUSH_VIEWERS {
                                self.flush(&mut to_wake, &mut next_timeout);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // ICMP errors surface here on Linux; they concern one peer only.
                            debug!(worker = self.id.0, "recv: {e}");
                            if e.kind() != ErrorKind::ConnectionRefused {
                                break;
                            }
                        }
                    }
                }
            }

            let now = Instant::now();
            if now >= next_timeout {
                self.worker.handle_input(Input::Timeout(now));
            }
            self.flush(&mut to_wake, &mut next_timeout);
        }
    }

    /// Send everything the worker produced; wake each peer worker at most once.
    fn flush(&mut self, to_wake: &mut [bool], next_timeout: &mut Instant) {
        loop {
            match self.worker.poll_output() {
                Output::Transmit(t) => {
                    let Some(i) = self.sockets.iter().position(|(_, a)| *a == t.source) else {
                        continue;
                    };
                    self.published.bytes_out += t.contents.len() as u64;
                    self.outgoing[i].push(t.destination, t.contents.into());
                    // A big room's first viewers need not wait for its last ones.
                    if self.outgoing[i].is_full()
                        && let Err(e) = self.outgoing[i].flush(&self.sockets[i].0)
                    {
                        debug!(worker = self.id.0, "send: {e}");
                    }
                }
                Output::Peer(w, m) => {
                    if let Some(peer) = self.peers.get(w.0) {
                        if peer.push(Inbox::Peer(m)).is_err() {
                            self.published.peer_drops += 1;
                            debug!(worker = self.id.0, to = w.0, "peer queue full, message dropped");
                        }
                        to_wake[w.0] = true;
                    }
                }
                Output::Event(e) => {
                    // The receiver lives as long as the SFU's handle; after that nobody listens.
                    let _ = self.events.send(e);
                }
                Output::Timeout(t) => {
                    *next_timeout = t;
                    break;
                }
            }
        }
        for (i, batch) in self.outgoing.iter_mut().enumerate() {
            if !batch.is_empty()
                && let Err(e) = batch.flush(&self.sockets[i].0)
            {
                debug!(worker = self.id.0, "send: {e}");
            }
            self.published.send_drops += batch.take_dropped();
        }
        for (i, w) in to_wake.iter_mut().enumerate() {
            if *w {
                self.peers[i].wake();
                *w = false;
            }
        }
        let sent = Instant::now();
        let tally = &mut self.tally;
        let oldest = &mut self.window.oldest;
        self.worker.take_forwarded(|received| {
            let delay = sent.saturating_duration_since(received);
            *oldest = (*oldest).max(delay);
            tally.record(delay);
        });
        let stats = self.worker.stats();
        self.window.roll(sent, stats.late_drops, &self.pressure, self.id);
        self.metrics.publish(&mut self.tally, stats, &mut self.published);
    }
}
