//! Starting the SFU and the handle the control plane uses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use parking_lot::Mutex;
use sfu_core::str0m::format::Codec;
use sfu_core::{
    Command, HealthReport, IceFragment, LayerChoice, LayerState, RoomId, SessionConfig, SessionId,
    SessionKind, SfuError, SfuEvent, TapId, Worker, WorkerConfig, WorkerId, build_session, home_worker,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, info};

use crate::metrics::{Lag, Metrics, MetricsSnapshot, Pressure};
use crate::sessions::{SessionBook, SessionLimits};
use crate::source::RoomSource;
use crate::tap::RoomTap;
use crate::worker_thread::{Inbox, LagWindow, Mailbox, WAKER, WorkerThread};

/// How the SFU listens.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// First UDP port; worker `i` listens on `udp_port + i` (0: any free ports).
    pub udp_port: u16,
    /// Addresses to bind and advertise as host candidates.
    pub ips: Vec<IpAddr>,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Starting bandwidth estimate for viewers, bit/s.
    pub initial_bwe_bps: u64,
    /// A session not connected this long after its offer is closed.
    pub connect_timeout: Duration,
    /// Limits on creating sessions.
    pub limits: SessionLimits,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            udp_port: 8189,
            ips: vec![IpAddr::from([127, 0, 0, 1])],
            workers: 0,
            initial_bwe_bps: 1_000_000,
            connect_timeout: Duration::from_secs(30),
            limits: SessionLimits::default(),
        }
    }
}

struct WorkerSlot {
    mailbox: Mailbox,
    addrs: Vec<SocketAddr>,
    load: AtomicUsize,
    /// How far behind the worker is, as it last reported.
    pressure: Arc<Pressure>,
    /// Cleared when the worker thread returns or panics.
    running: Arc<AtomicBool>,
}

/// Clears a worker's `running` flag however its thread ends.
struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

struct Inner {
    workers: Vec<WorkerSlot>,
    next_id: AtomicU64,
    initial_bwe_bps: u64,
    /// Which worker owns which session, and the limits on new ones (control plane only; the
    /// media path never looks).
    sessions: Mutex<SessionBook>,
    /// The video codec of each live room's publisher, so viewers are answered with it, and
    /// whether it sends simulcast layers (only then do viewers need a bandwidth estimate).
    room_video: Mutex<HashMap<RoomId, (Codec, bool)>>,
    events: broadcast::Sender<SfuEvent>,
    metrics: Arc<Metrics>,
}

/// A running SFU. Dropping it does not stop the workers (they live for the process).
pub struct Sfu {
    handle: SfuHandle,
}

/// Cheap to clone; what signaling holds.
#[derive(Clone)]
pub struct SfuHandle {
    inner: Arc<Inner>,
}

impl Sfu {
    /// Bind the sockets and start the workers.
    pub fn start(config: SfuConfig) -> std::io::Result<Sfu> {
        let n = if config.workers == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            config.workers
        };
        let (events_tx, _) = broadcast::channel(4096);
        let (events_in, events_out) = std::sync::mpsc::channel::<SfuEvent>();

        let mut polls = Vec::new();
        let mut sockets = Vec::new();
        let mut mailboxes = Vec::new();
        let mut inboxes = Vec::new();
        for i in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let mut socks = Vec::new();
            for ip in &config.ips {
                let port = if config.udp_port == 0 {
                    0
                } else {
                    config.udp_port + i as u16
                };
                let s = bind_udp(SocketAddr::new(*ip, port))?;
                let local = s.local_addr()?;
                socks.push((s, local));
            }
            WorkerThread::register(&poll, &mut socks)?;
            let (tx, rx) = sync_channel(65_536);
            mailboxes.push(Mailbox { tx, waker });
            inboxes.push(rx);
            polls.push(poll);
            sockets.push(socks);
        }

        let inner = Arc::new(Inner {
            workers: mailboxes
                .iter()
                .zip(&sockets)
                .map(|(m, s)| WorkerSlot {
                    mailbox: m.clone(),
                    addrs: s.iter().map(|(_, a)| *a).collect(),
                    load: AtomicUsize::new(0),
                    pressure: Arc::default(),
                    running: Arc::new(AtomicBool::new(true)),
                })
                .collect(),
            next_id: AtomicU64::new(seed()),
            initial_bwe_bps: config.initial_bwe_bps,
            sessions: Mutex::new(SessionBook::new(config.limits)),
            room_video: Mutex::new(HashMap::new()),
            events: events_tx,
            metrics: Arc::new(Metrics::default()),
        });

        for (i, ((poll, socks), inbox)) in polls.into_iter().zip(sockets).zip(inboxes).enumerate() {
            let id = WorkerId(i);
            let now = Instant::now();
            let worker = Worker::new(
                WorkerConfig {
                    id,
                    workers: n,
                    tick: Duration::from_millis(100),
                    initial_bwe_bps: config.initial_bwe_bps,
                    connect_timeout: config.connect_timeout,
                },
                now,
            );
            let running = RunningGuard(inner.workers[i].running.clone());
            let peers = mailboxes.clone();
            let events = events_in.clone();
            let metrics = inner.metrics.clone();
            let pressure = inner.workers[i].pressure.clone();
            std::thread::Builder::new()
                .name(format!("sfu-worker-{i}"))
                .spawn(move || {
                    let _running = running;
                    // Built here: the send batches' kernel headers stay on this thread.
                    let thread = WorkerThread {
                        id,
                        worker,
                        poll,
                        outgoing: socks.iter().map(|_| Default::default()).collect(),
                        sockets: socks,
                        inbox,
                        peers,
                        events,
                        metrics,
                        tally: Default::default(),
                        published: crate::metrics::Published::default(),
                        pressure,
                        window: LagWindow::new(now),
                    };
                    thread.run()
                })?;
        }
        // Session events leave the workers through a channel and are applied here, so a
        // worker thread never waits on the control plane's maps. Two events per session: the
        // queue is bounded by the number of sessions.
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("sfu-events".into())
            .spawn(move || {
                for e in events_out {
                    let Some(inner) = weak.upgrade() else { break };
                    inner.on_event(e);
                }
            })?;
        let addrs: Vec<String> = inner
            .workers
            .iter()
            .flat_map(|w| &w.addrs)
            .map(|a| a.to_string())
            .collect();
        info!(workers = n, "SFU media on UDP {}", addrs.join(", "));
        Ok(Sfu {
            handle: SfuHandle { inner },
        })
    }

    /// The handle for the control plane.
    pub fn handle(&self) -> SfuHandle {
        self.handle.clone()
    }
}

impl Inner {
    fn on_event(&self, e: SfuEvent) {
        match &e {
            SfuEvent::PublisherVideo {
                room,
                codec,
                simulcast,
                ..
            } => {
                self.room_video.lock().insert(room.clone(), (*codec, *simulcast));
            }
            SfuEvent::Connected { session, .. } => self.sessions.lock().connected(*session),
            SfuEvent::Closed { session, .. } => {
                if let Some(w) = self.sessions.lock().remove(*session) {
                    self.workers[w.0].load.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        // Nobody listening is fine.
        let _ = self.events.send(e);
    }

    fn send(&self, worker: WorkerId, c: Command) -> Result<(), SfuError> {
        let slot = self.workers.get(worker.0).ok_or(SfuError::WorkerUnavailable)?;
        slot.mailbox
            .push(Inbox::Command(c))
            .map_err(|_| SfuError::WorkerUnavailable)?;
        slot.mailbox.wake();
        Ok(())
    }

    fn worker_of(&self, id: SessionId) -> Result<WorkerId, SfuError> {
        self.sessions.lock().worker_of(id).ok_or(SfuError::UnknownSession)
    }
}

impl SfuHandle {
    /// Accept a WHIP (publisher) or WHEP (subscriber) offer from `client` (its address, for
    /// the per-client limit; `None` for none): returns the session id and the SDP answer. A
    /// new publisher in a room replaces the previous one.
    pub fn create_session(
        &self,
        room: &str,
        kind: SessionKind,
        offer: &str,
        client: Option<IpAddr>,
    ) -> Result<(SessionId, String), SfuError> {
        let inner = &self.inner;
        // Checked before the offer is parsed (the expensive part), and again when the session
        // is booked.
        inner.sessions.lock().admit(client)?;
        let room = RoomId::new(room);
        let worker = match kind {
            SessionKind::Publisher => home_worker(&room, inner.workers.len()),
            // The least loaded worker that keeps up; the least loaded of all when none does.
            SessionKind::Subscriber => {
                let (i, _) = inner
                    .workers
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, w)| (w.pressure.get().overloaded(), w.load.load(Ordering::Relaxed)))
                    .ok_or(SfuError::WorkerUnavailable)?;
                WorkerId(i)
            }
        };
        let video = inner.room_video.lock().get(&room).copied();
        let config = SessionConfig {
            candidates: inner.workers[worker.0].addrs.clone(),
            video_codec: video.map(|(codec, _)| codec),
            // Before the publisher's video is known, estimate: the room may have layers.
            estimate_bandwidth: video.is_none_or(|(_, simulcast)| simulcast),
            initial_bwe_bps: inner.initial_bwe_bps,
        };
        debug!(%room, ?kind, video = ?config.video_codec, estimate_bandwidth = config.estimate_bandwidth, "new session");
        let setup = build_session(&config, kind, offer, Instant::now())?;
        let id = SessionId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        {
            let mut book = inner.sessions.lock();
            book.admit(client)?;
            book.insert(id, worker, room.clone(), client);
        }
        inner.workers[worker.0].load.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = inner.send(
            worker,
            Command::AddSession {
                id,
                room,
                kind,
                rtc: Box::new(setup.rtc),
            },
        ) {
            inner.sessions.lock().remove(id);
            inner.workers[worker.0].load.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        Ok((id, setup.answer))
    }

    /// Tap a room for the LL-HLS bridge: its publisher's audio and top video layer, into a
    /// queue of at most `capacity` packets. The tap lives until the [`RoomTap`] is dropped,
    /// across publisher reconnects (a room without a publisher just sends nothing).
    pub fn tap(&self, room: &str, capacity: usize) -> Result<RoomTap, SfuError> {
        let room = RoomId::new(room);
        let worker = home_worker(&room, self.inner.workers.len());
        let id = TapId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        RoomTap::start(self, id, room, worker, capacity)
    }

    /// Make an in-process source (RTMP, SRT, RTSP ingest) the publisher of `room`, replacing
    /// any publisher it has. It lives until the [`RoomSource`] is dropped, a newer publisher
    /// takes the room, or [`SfuHandle::close`] ends it.
    pub fn publish_source(&self, room: &str) -> Result<RoomSource, SfuError> {
        let inner = &self.inner;
        let room = RoomId::new(room);
        let worker = home_worker(&room, inner.workers.len());
        let id = SessionId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        inner.sessions.lock().insert(id, worker, room.clone(), None);
        inner.workers[worker.0].load.fetch_add(1, Ordering::Relaxed);
        RoomSource::start(self, id, room, worker).inspect_err(|_| {
            inner.sessions.lock().remove(id);
            inner.workers[worker.0].load.fetch_sub(1, Ordering::Relaxed);
        })
    }

    pub(crate) fn send(&self, worker: WorkerId, c: Command) -> Result<(), SfuError> {
        self.inner.send(worker, c)
    }

    /// End a session.
    pub fn close(&self, id: SessionId) -> Result<(), SfuError> {
        let w = self.inner.worker_of(id)?;
        self.inner.send(w, Command::Close { id })
    }

    /// Whether the session exists.
    pub fn exists(&self, id: SessionId) -> bool {
        self.inner.worker_of(id).is_ok()
    }

    /// Pin a viewer's layer (`Some`) or return it to automatic (`None`).
    pub async fn set_layer(&self, id: SessionId, rid: Option<&str>) -> Result<(), SfuError> {
        let w = self.inner.worker_of(id)?;
        let (tx, rx) = oneshot::channel();
        let choice = match rid {
            Some(r) => LayerChoice::Pinned(r.into()),
            None => LayerChoice::Auto,
        };
        self.inner.send(
            w,
            Command::SetLayer {
                id,
                choice,
                reply: Box::new(move |found| {
                    let _ = tx.send(found);
                }),
            },
        )?;
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SfuError::UnknownSession),
            Err(_) => Err(SfuError::WorkerUnavailable),
        }
    }

    /// A viewer's layer state.
    pub async fn layer_state(&self, id: SessionId) -> Result<LayerState, SfuError> {
        let w = self.inner.worker_of(id)?;
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            w,
            Command::QueryLayer {
                id,
                reply: Box::new(move |s| {
                    let _ = tx.send(s);
                }),
            },
        )?;
        rx.await
            .map_err(|_| SfuError::WorkerUnavailable)?
            .ok_or(SfuError::UnknownSession)
    }

    /// How the publisher's media of `room` arrives; `None` when it has no publisher.
    pub async fn stream_health(&self, room: &str) -> Result<Option<HealthReport>, SfuError> {
        let room = RoomId::new(room);
        let w = home_worker(&room, self.inner.workers.len());
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            w,
            Command::QueryHealth {
                room: room.clone(),
                reply: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            },
        )?;
        let mut report = rx.await.map_err(|_| SfuError::WorkerUnavailable)?;
        if let Some(report) = &mut report {
            report.delivery = self.delivery_warnings(&room);
        }
        Ok(report)
    }

    /// A warning for each worker that serves `room` and cannot keep up.
    fn delivery_warnings(&self, room: &RoomId) -> Vec<String> {
        let workers = self.inner.sessions.lock().workers_in(room);
        workers
            .into_iter()
            .filter_map(|w| {
                let lag = self.inner.workers[w.0].pressure.get();
                lag.overloaded().then(|| {
                    format!(
                        "media worker {} cannot keep up: oldest media {} ms, {} late packets skipped in the last second",
                        w.0,
                        lag.oldest.as_millis(),
                        lag.late_drops
                    )
                })
            })
            .collect()
    }

    /// Apply a trickle-ICE fragment; returns new local credentials on an ICE restart.
    pub async fn trickle(
        &self,
        id: SessionId,
        fragment: IceFragment,
    ) -> Result<Option<(String, String)>, SfuError> {
        let w = self.inner.worker_of(id)?;
        let (tx, rx) = oneshot::channel();
        self.inner.send(
            w,
            Command::Trickle {
                id,
                fragment,
                reply: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            },
        )?;
        let creds = rx.await.map_err(|_| SfuError::WorkerUnavailable)??;
        Ok(creds.map(|c| (c.ufrag, c.pass)))
    }

    /// Packet counters, the forwarding-delay histogram and the sessions per worker.
    pub fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            worker_sessions: self.worker_loads(),
            worker_lag: self.worker_lag(),
            sessions_connecting: self.inner.sessions.lock().connecting(),
            ..self.inner.metrics.snapshot()
        }
    }

    /// How far behind each worker was over its last second, worker 0 first.
    pub fn worker_lag(&self) -> Vec<Lag> {
        self.inner.workers.iter().map(|w| w.pressure.get()).collect()
    }

    /// Live sessions per worker (as the control plane placed them).
    pub fn worker_loads(&self) -> Vec<usize> {
        self.inner
            .workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect()
    }

    /// Worker threads still running, and how many were started (readiness checks).
    pub fn workers_running(&self) -> (usize, usize) {
        let w = &self.inner.workers;
        let running = w.iter().filter(|w| w.running.load(Ordering::Relaxed)).count();
        (running, w.len())
    }

    /// Session events (connected, closed...), for the control plane.
    pub fn events(&self) -> broadcast::Receiver<SfuEvent> {
        self.inner.events.subscribe()
    }

    /// The UDP addresses the workers listen on.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.inner
            .workers
            .iter()
            .flat_map(|w| w.addrs.iter().copied())
            .collect()
    }

    /// Forget a room's codec once its stream has ended.
    pub fn room_ended(&self, room: &str) {
        self.inner.room_video.lock().remove(&RoomId::new(room));
    }

    /// Whether the room's publisher sends video (its first video packet has arrived).
    pub(crate) fn room_has_video(&self, room: &RoomId) -> bool {
        self.inner.room_video.lock().contains_key(room)
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Bursts of keyframes to many viewers must not overflow the kernel's buffers.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// Session ids double as unguessable parts of resource URLs only together with the
/// random resource token signaling adds; here they just need to differ between runs.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ (std::process::id() as u64).rotate_left(32)) & 0x00ff_ffff_ffff_ffff
}
