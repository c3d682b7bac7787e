//! The sans-IO engine of one worker thread: sessions, room views, fan-out.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::format::Codec;
use str0m::media::{MediaKind, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, IceCreds, Rtc};
use tracing::{debug, info};

use crate::allocator::LayerChoice;
use crate::error::SfuError;
use crate::gop_cache::GopCache;
use crate::ice_fragment::IceFragment;
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::ingest_health::HealthReport;
use crate::packet::MediaPacket;
use crate::publisher::Publisher;
use crate::room::{Room, home_worker};
use crate::session::SessionKind;
use crate::subscriber::Subscriber;

/// Static facts about a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's index.
    pub id: WorkerId,
    /// How many workers there are (room homes are spread over them).
    pub workers: usize,
    /// How often layer allocation and keyframe waits are revisited.
    pub tick: Duration,
    /// Starting bandwidth estimate of a new subscriber, bit/s.
    pub initial_bwe_bps: u64,
}

/// A UDP datagram that arrived on one of the worker's sockets.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// Sender.
    pub source: SocketAddr,
    /// The local socket address it arrived on.
    pub destination: SocketAddr,
    /// Payload.
    pub data: &'a [u8],
}

/// A datagram to send.
pub type Transmit = str0m::net::Transmit;

/// Everything a worker reacts to. Each input carries the current time.
#[derive(Debug)]
pub enum Input<'a> {
    /// Network input.
    Datagram(Instant, Datagram<'a>),
    /// A request from the control plane.
    Command(Instant, Command),
    /// A message from another worker.
    Peer(Instant, PeerMessage),
    /// Time passed.
    Timeout(Instant),
}

/// Layer state of one viewer, for the WHEP layer resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerState {
    /// Pinned layer, or `None` in automatic mode.
    pub pinned: Option<String>,
    /// The layer being sent.
    pub current: Option<String>,
    /// The layer being switched to.
    pub target: Option<String>,
    /// Layers the publisher is sending.
    pub available: Vec<String>,
    /// The viewer's bandwidth estimate, bit/s.
    pub estimate_bps: u64,
}

/// Reply callback; the driver decides how it crosses back (a oneshot channel, usually).
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Requests from the control plane.
pub enum Command {
    /// Adopt a session built by [`crate::build_session`].
    AddSession {
        /// Its id.
        id: SessionId,
        /// Its room.
        room: RoomId,
        /// Publisher or subscriber.
        kind: SessionKind,
        /// The WebRTC state machine.
        rtc: Box<Rtc>,
    },
    /// End a session (WHIP/WHEP DELETE).
    Close {
        /// Which.
        id: SessionId,
    },
    /// Pin a viewer's layer or return it to automatic.
    SetLayer {
        /// Which viewer.
        id: SessionId,
        /// The choice.
        choice: LayerChoice,
        /// Whether the session exists.
        reply: Reply<bool>,
    },
    /// Read a viewer's layer state.
    QueryLayer {
        /// Which viewer.
        id: SessionId,
        /// The answer, `None` when the session is unknown.
        reply: Reply<Option<LayerState>>,
    },
    /// How a room's publisher media arrives (to the room's home worker).
    QueryHealth {
        /// Which room.
        room: RoomId,
        /// The answer, `None` when the room has no publisher here.
        reply: Reply<Option<HealthReport>>,
    },
    /// Trickle ICE or ICE restart (WHIP/WHEP PATCH).
    Trickle {
        /// Which session.
        id: SessionId,
        /// The parsed fragment.
        fragment: IceFragment,
        /// New local credentials when the fragment restarted ICE.
        reply: Reply<Result<Option<IceCreds>, SfuError>>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::AddSession { id, room, kind, .. } => write!(f, "AddSession({id}, {room}, {kind:?})"),
            Command::Close { id } => write!(f, "Close({id})"),
            Command::SetLayer { id, choice, .. } => write!(f, "SetLayer({id}, {choice:?})"),
            Command::QueryLayer { id, .. } => write!(f, "QueryLayer({id})"),
            Command::QueryHealth { room, .. } => write!(f, "QueryHealth({room})"),
            Command::Trickle { id, .. } => write!(f, "Trickle({id})"),
        }
    }
}

/// Messages between workers.
#[derive(Debug)]
pub enum PeerMessage {
    /// A publisher packet for the receiving worker's subscribers.
    Media(Arc<MediaPacket>),
    /// A subscriber elsewhere needs a keyframe (to the home worker).
    KeyframeRequest {
        /// Room.
        room: RoomId,
        /// Layer.
        rid: Option<Rid>,
    },
    /// A worker starts or stops wanting a room's packets (to the home worker).
    Interest {
        /// Room.
        room: RoomId,
        /// The worker.
        worker: WorkerId,
        /// Wants them or not.
        on: bool,
    },
}

/// What the control plane hears about sessions.
#[derive(Debug, Clone)]
pub enum SfuEvent {
    /// ICE and DTLS are up.
    Connected {
        /// Session.
        session: SessionId,
        /// Room.
        room: RoomId,
        /// Kind.
        kind: SessionKind,
        /// For publishers: the negotiated video codec.
        video_codec: Option<Codec>,
    },
    /// The session is gone (closed, replaced, timed out).
    Closed {
        /// Session.
        session: SessionId,
        /// Room.
        room: RoomId,
        /// Kind.
        kind: SessionKind,
    },
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Hand a message to another worker.
    Peer(WorkerId, PeerMessage),
    /// Tell the control plane.
    Event(SfuEvent),
    /// Nothing more until this time or the next input.
    Timeout(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Connecting,
    Connected,
}

#[derive(Debug)]
enum Role {
    Publisher(Publisher),
    Subscriber(Box<Subscriber>),
}

#[derive(Debug)]
struct Session {
    id: SessionId,
    room: RoomId,
    kind: SessionKind,
    rtc: Rtc,
    state: SessionState,
    role: Role,
    timeout: Instant,
    addrs: Vec<SocketAddr>,
    /// Listed in `Worker::deferred`.
    pending_drain: bool,
}

/// A viewer that connects starts from a cached keyframe at most this old (bigger ones mean a
/// longer burst of stale frames).
const REPLAY_MAX_AGE: Duration = Duration::from_millis(600);

/// Viewers drained per [`Worker::poll_output`] step.
const DRAIN_CHUNK: usize = 32;

/// Upper bounds of the bandwidth-estimate buckets of [`WorkerStats::estimates`], in bit/s
/// (the last bucket is open).
pub const ESTIMATE_BUCKETS_BPS: [u64; 7] = [
    250_000, 500_000, 1_000_000, 1_500_000, 2_500_000, 4_000_000, 8_000_000,
];

/// Counters for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerStats {
    /// Live sessions.
    pub sessions: usize,
    /// Publisher packets received (or handed over by another worker).
    pub packets_in: u64,
    /// Packets written to subscribers.
    pub packets_out: u64,
    /// Subscribers by their current bandwidth estimate (TWCC), per bucket of
    /// [`ESTIMATE_BUCKETS_BPS`] (not cumulative; the last slot is the open bucket).
    pub estimates: [u64; ESTIMATE_BUCKETS_BPS.len() + 1],
    /// Sum of the subscribers' current estimates, bit/s.
    pub estimate_sum_bps: u64,
}

impl WorkerStats {
    /// A subscriber's estimate went from `old` to `new` (`None`: it did not exist / left).
    fn estimate_moved(&mut self, old: Option<u64>, new: Option<u64>) {
        let bucket = |bps: u64| ESTIMATE_BUCKETS_BPS.partition_point(|&b| b < bps);
        if let Some(old) = old {
            self.estimates[bucket(old)] -= 1;
            self.estimate_sum_bps -= old;
        }
        if let Some(new) = new {
            self.estimates[bucket(new)] += 1;
            self.estimate_sum_bps += new;
        }
    }
}

/// One worker's sessions and rooms. See the crate docs for the loop that drives it.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    sessions: HashMap<SessionId, Box<Session>>,
    by_addr: HashMap<SocketAddr, SessionId>,
    rooms: HashMap<RoomId, Room>,
    out: VecDeque<Output>,
    /// Sessions to drain; `true` when they need a time update first (media was written).
    dirty: Vec<(SessionId, bool)>,
    packets: Vec<Arc<MediaPacket>>,
    /// Subscribers that had media written since they were last drained. Draining waits until
    /// the driver asks for output, so a burst of publisher packets costs each subscriber one
    /// str0m timeout and poll instead of one per packet.
    deferred: Vec<SessionId>,
    /// Arrival times of the packets forwarded since the driver last took them.
    forwarded: Vec<Instant>,
    /// The time of the latest input.
    now: Instant,
    /// Rooms to re-allocate once the current input is processed.
    allocate_soon: Vec<RoomId>,
    next_tick: Instant,
    stats: WorkerStats,
}

impl Worker {
    /// A worker with no sessions.
    pub fn new(config: WorkerConfig, now: Instant) -> Self {
        Worker {
            next_tick: now + config.tick,
            config,
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            rooms: HashMap::new(),
            out: VecDeque::new(),
            dirty: Vec::new(),
            packets: Vec::new(),
            deferred: Vec::new(),
            forwarded: Vec::new(),
            allocate_soon: Vec::new(),
            now,
            stats: WorkerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            sessions: self.sessions.len(),
            ..self.stats
        }
    }

    /// Apply one input. Outputs queue up for [`Worker::poll_output`].
    pub fn handle_input(&mut self, input: Input<'_>) {
        let now = match &input {
            Input::Datagram(now, _) | Input::Command(now, _) | Input::Peer(now, _) | Input::Timeout(now) => {
                *now
            }
        };
        self.now = self.now.max(now);
        let now = match input {
            Input::Datagram(now, d) => {
                self.datagram(now, d);
                now
            }
            Input::Command(now, c) => {
                self.command(now, c);
                now
            }
            Input::Peer(now, m) => {
                self.peer(now, m);
                now
            }
            Input::Timeout(now) => {
                for s in self.sessions.values_mut() {
                    if s.timeout <= now {
                        self.dirty.push((s.id, true));
                    }
                }
                if now >= self.next_tick {
                    self.next_tick = now + self.config.tick;
                    self.tick(now);
                }
                now
            }
        };
        self.process(now);
    }

    /// Viewers with media written and not yet drained. A driver flushes (polls output and
    /// sends) once this grows past a few dozen, so a big room's first viewers do not wait for
    /// the whole read batch to be forwarded to everyone (forwarding delay).
    pub fn pending_viewers(&self) -> usize {
        self.deferred.len()
    }

    /// Hand the arrival times of the packets forwarded since the last call to `f`, then forget
    /// them. Everything forwarded so far has been output by the time [`Worker::poll_output`]
    /// returned [`Output::Timeout`], so a driver calling this after sending measures the
    /// server's receive -> send delay.
    pub fn take_forwarded(&mut self, mut f: impl FnMut(Instant)) {
        for t in self.forwarded.drain(..) {
            f(t);
        }
    }

    /// Next thing to do. Ends with [`Output::Timeout`] when there is nothing more.
    pub fn poll_output(&mut self) -> Output {
        while self.out.is_empty() && !self.deferred.is_empty() {
            // A few dozen at a time, so the driver can send the first viewers' packets while
            // the rest are still being prepared.
            let n = self.deferred.len().min(DRAIN_CHUNK);
            self.dirty.extend(self.deferred.drain(..n).map(|id| (id, true)));
            self.process(self.now);
        }
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let next = self
            .sessions
            .values()
            .map(|s| s.timeout)
            .min()
            .map_or(self.next_tick, |t| t.min(self.next_tick));
        Output::Timeout(next)
    }

    fn datagram(&mut self, now: Instant, d: Datagram<'_>) {
        let Ok(contents) = d.data.try_into() else {
            return;
        };
        let input = str0m::Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents,
            },
        );
        let id = match self.by_addr.get(&d.source) {
            Some(id) => Some(*id),
            None => self
                .sessions
                .values()
                .find(|s| s.rtc.accepts(&input))
                .map(|s| s.id),
        };
        let Some(id) = id else {
            debug!("datagram from an unknown peer");
            return;
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.addrs.contains(&d.source) {
            s.addrs.push(d.source);
            self.by_addr.insert(d.source, id);
        }
        if let Err(e) = s.rtc.handle_input(input) {
            debug!(session = %id, "input rejected: {e}");
        }
        self.dirty.push((id, false));
    }

    fn command(&mut self, now: Instant, c: Command) {
        match c {
            Command::AddSession { id, room, kind, rtc } => self.add_session(now, id, room, kind, *rtc),
            Command::Close { id } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.rtc.disconnect();
                    self.dirty.push((id, false));
                }
            }
            Command::SetLayer { id, choice, reply } => {
                let found = match self.sessions.get_mut(&id).map(|s| &mut s.role) {
                    Some(Role::Subscriber(sub)) => {
                        sub.set_choice(choice);
                        true
                    }
                    _ => false,
                };
                if found && let Some(room) = self.sessions.get(&id).map(|s| s.room.clone()) {
                    self.allocate_room(&room, now);
                }
                reply(found);
            }
            Command::QueryLayer { id, reply } => {
                let state = self.layer_state(id, now);
                reply(state);
            }
            Command::QueryHealth { room, reply } => {
                let report = self
                    .rooms
                    .get_mut(&room)
                    .filter(|r| r.publisher.is_some())
                    .map(|r| r.health.report(now));
                reply(report);
            }
            Command::Trickle { id, fragment, reply } => {
                let Some(s) = self.sessions.get_mut(&id) else {
                    reply(Err(SfuError::UnknownSession));
                    return;
                };
                let mut local = None;
                if let Some(remote) = fragment.restart {
                    let creds = IceCreds {
                        ufrag: random_token(now, 8),
                        pass: random_token(now, 24),
                    };
                    let mut api = s.rtc.direct_api();
                    api.set_remote_ice_credentials(remote);
                    api.set_local_ice_credentials(creds.clone());
                    local = Some(creds);
                }
                for c in fragment.candidates {
                    s.rtc.add_remote_candidate(c);
                }
                self.dirty.push((id, true));
                reply(Ok(local));
            }
        }
    }

    fn add_session(&mut self, now: Instant, id: SessionId, room_id: RoomId, kind: SessionKind, rtc: Rtc) {
        let home = home_worker(&room_id, self.config.workers);
        let me = self.config.id;
        let room = self
            .rooms
            .entry(room_id.clone())
            .or_insert_with(|| Room::new(home));
        let mut early_keyframe = None;
        let role = match kind {
            SessionKind::Publisher => {
                if let Some(old) = room.publisher.take() {
                    info!(room = %room_id, "publisher replaced by a new session");
                    if let Some(s) = self.sessions.get_mut(&old) {
                        s.rtc.disconnect();
                        self.dirty.push((old, false));
                    }
                }
                room.epoch += 1;
                room.health.reset();
                room.publisher = Some(id);
                Role::Publisher(Publisher::new(room.epoch))
            }
            SessionKind::Subscriber => {
                if room.subscribers.is_empty() && home != me {
                    self.out.push_back(Output::Peer(
                        home,
                        PeerMessage::Interest {
                            room: room_id.clone(),
                            worker: me,
                            on: true,
                        },
                    ));
                }
                room.subscribers.push(id);
                let mut sub = Box::new(Subscriber::new(self.config.initial_bwe_bps));
                self.stats.estimate_moved(None, Some(sub.estimate_bps));
                // Ask for the keyframe of the layer this viewer will start on now, one ICE +
                // DTLS handshake before it can receive: when it connects, the keyframe waits
                // in the room's cache (time to first frame).
                let layers = room.layers.active(now);
                let rid = sub.planned_layer(now, &layers);
                if room.home != me || room.publisher.is_some() {
                    early_keyframe = Some(rid);
                }
                Role::Subscriber(sub)
            }
        };
        self.sessions.insert(
            id,
            Box::new(Session {
                id,
                room: room_id,
                kind,
                rtc,
                state: SessionState::Connecting,
                role,
                timeout: now,
                addrs: Vec::new(),
                pending_drain: false,
            }),
        );
        self.dirty.push((id, true));
        if let Some(rid) = early_keyframe {
            let room = self.sessions[&id].room.clone();
            self.request_keyframe(&room, rid, now);
        }
    }

    fn peer(&mut self, now: Instant, m: PeerMessage) {
        match m {
            PeerMessage::Media(p) => {
                self.stats.packets_in += 1;
                self.deliver(&p, now);
            }
            PeerMessage::KeyframeRequest { room, rid } => self.request_keyframe(&room, rid, now),
            PeerMessage::Interest { room, worker, on } => {
                let home = home_worker(&room, self.config.workers);
                let view = self.rooms.entry(room.clone()).or_insert_with(|| Room::new(home));
                if on {
                    view.remote_workers.insert(worker);
                } else {
                    view.remote_workers.remove(&worker);
                    if view.is_idle() {
                        self.rooms.remove(&room);
                    }
                }
            }
        }
    }

    /// Drain every dirty session, fan out what publishers produced, repeat until quiet.
    fn process(&mut self, now: Instant) {
        while !self.dirty.is_empty() || !self.packets.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            dirty.sort_unstable();
            dirty.dedup_by(|a, b| {
                a.0 == b.0 && {
                    b.1 |= a.1;
                    true
                }
            });
            for (id, needs_time) in dirty {
                self.drain(id, needs_time, now);
            }
            for p in std::mem::take(&mut self.packets) {
                self.stats.packets_in += 1;
                self.fan_out(p, now);
            }
            for room in std::mem::take(&mut self.allocate_soon) {
                self.allocate_room(&room, now);
            }
        }
    }

    fn drain(&mut self, id: SessionId, needs_time: bool, now: Instant) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        s.pending_drain = false;
        if needs_time
            && s.rtc.is_alive()
            && let Err(e) = s.rtc.handle_input(str0m::Input::Timeout(now))
        {
            debug!(session = %id, "timeout handling failed: {e}");
            s.rtc.disconnect();
        }
        while s.rtc.is_alive() {
            let output = match s.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = %id, "poll failed: {e}");
                    s.rtc.disconnect();
                    break;
                }
            };
            match output {
                str0m::Output::Timeout(t) => {
                    s.timeout = t;
                    break;
                }
                str0m::Output::Transmit(t) => self.out.push_back(Output::Transmit(t)),
                str0m::Output::Event(e) => self.event(&mut s, e, now),
            }
        }
        if s.rtc.is_alive() {
            self.sessions.insert(id, s);
        } else {
            self.remove_session(*s);
        }
    }

    fn event(&mut self, s: &mut Session, e: Event, now: Instant) {
        match e {
            Event::Connected => {
                s.state = SessionState::Connected;
                let video_codec = match &s.role {
                    Role::Publisher(p) => p.video_params(&s.rtc).map(|p| p.spec().codec),
                    Role::Subscriber(_) => None,
                };
                info!(session = %s.id, room = %s.room, kind = ?s.kind, "connected");
                self.out.push_back(Output::Event(SfuEvent::Connected {
                    session: s.id,
                    room: s.room.clone(),
                    kind: s.kind,
                    video_codec,
                }));
                if let Role::Subscriber(sub) = &mut s.role {
                    // Ask for a keyframe now rather than at the next tick: time to first frame.
                    let layers = self
                        .rooms
                        .get_mut(&s.room)
                        .map(|r| r.layers.active(now))
                        .unwrap_or_default();
                    let desired = sub.allocate(now, &layers);
                    s.rtc
                        .bwe()
                        .set_bitrate(Bitrate::from(0.0), Bitrate::from(desired as f64));
                    if let Some((rid, _)) = sub.awaiting_keyframe() {
                        // The keyframe asked for when the session was created is usually
                        // here already: start from it. Otherwise ask (again) now.
                        let sent = match self.rooms.get(&s.room) {
                            Some(r) => replay_cached(&r.gops, sub, &mut s.rtc, rid, now),
                            None => 0,
                        };
                        if sent > 0 {
                            self.stats.packets_out += sent;
                            defer_drain(&mut self.deferred, s);
                        } else {
                            debug!(session = %s.id, ?rid, "no cached keyframe to start from");
                            let room = s.room.clone();
                            self.request_keyframe(&room, rid, now);
                        }
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                info!(session = %s.id, "ICE disconnected");
                s.rtc.disconnect();
            }
            Event::MediaAdded(m) => match &mut s.role {
                Role::Publisher(p) => p.media_added(m.mid, m.kind),
                Role::Subscriber(sub) => {
                    sub.media_added(m.mid, m.kind);
                    if m.kind == MediaKind::Video && s.state == SessionState::Connected {
                        // The video track appeared after the connection: place the viewer now
                        // rather than at the next tick (time to first frame).
                        self.allocate_soon.push(s.room.clone());
                    }
                    if m.kind == MediaKind::Video
                        && let Some(tx) = s.rtc.direct_api().stream_tx_by_mid(m.mid, None)
                    {
                        // The publisher's encoder already paces its frames. Pacing them again
                        // at 1.1 x the estimate spreads every keyframe over hundreds of
                        // milliseconds: late first frames, a long glass-to-glass tail.
                        tx.set_unpaced(true);
                    }
                }
            },
            Event::RtpPacket(p) => {
                if let Role::Publisher(publisher) = &mut s.role
                    && let Some(packet) = publisher.packet(&mut s.rtc, &s.room, p, now)
                {
                    self.packets.push(packet);
                }
            }
            Event::KeyframeRequest(_) => {
                if let Role::Subscriber(sub) = &s.role {
                    let rid = sub.keyframe_target();
                    let room = s.room.clone();
                    self.request_keyframe(&room, rid, now);
                }
            }
            Event::MediaEgressStats(st) => {
                debug!(session = %s.id, mid = %st.mid, packets = st.packets, nacks = st.nacks, plis = st.plis, loss = ?st.loss, rtt = ?st.rtt, "egress");
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Role::Subscriber(sub) = &mut s.role {
                    let old = std::mem::replace(&mut sub.estimate_bps, estimate.as_u64());
                    self.stats.estimate_moved(Some(old), Some(sub.estimate_bps));
                    debug!(session = %s.id, estimate = sub.estimate_bps, layer = ?sub.layers().0, "bandwidth estimate");
                }
            }
            _ => {}
        }
    }

    fn remove_session(&mut self, s: Session) {
        for a in &s.addrs {
            self.by_addr.remove(a);
        }
        if let Role::Subscriber(sub) = &s.role {
            self.stats.estimate_moved(Some(sub.estimate_bps), None);
        }
        info!(session = %s.id, room = %s.room, kind = ?s.kind, "closed");
        self.out.push_back(Output::Event(SfuEvent::Closed {
            session: s.id,
            room: s.room.clone(),
            kind: s.kind,
        }));
        let me = self.config.id;
        let Some(room) = self.rooms.get_mut(&s.room) else {
            return;
        };
        match s.kind {
            SessionKind::Publisher => {
                if room.publisher == Some(s.id) {
                    room.publisher = None;
                }
            }
            SessionKind::Subscriber => {
                room.subscribers.retain(|x| *x != s.id);
                if room.subscribers.is_empty() && room.home != me {
                    self.out.push_back(Output::Peer(
                        room.home,
                        PeerMessage::Interest {
                            room: s.room.clone(),
                            worker: me,
                            on: false,
                        },
                    ));
                }
            }
        }
        if room.is_idle() {
            // Keep the epoch on the home worker while anyone could still be watching.
            self.rooms.remove(&s.room);
        }
    }

    /// A packet from a local publisher: to local subscribers and once to every other
    /// interested worker.
    fn fan_out(&mut self, p: Arc<MediaPacket>, now: Instant) {
        if let Some(room) = self.rooms.get_mut(&p.room) {
            room.health.record(&p, now);
            for w in &room.remote_workers {
                self.out
                    .push_back(Output::Peer(*w, PeerMessage::Media(p.clone())));
            }
        }
        self.deliver(&p, now);
    }

    fn deliver(&mut self, p: &Arc<MediaPacket>, now: Instant) {
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        if p.kind == MediaKind::Video {
            room.layers.record(p.rid, p.payload.len(), now);
            if !room.subscribers.is_empty() {
                room.gops.record(p, now);
            }
        }
        for id in &room.subscribers {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            if s.state != SessionState::Connected {
                continue;
            }
            let Role::Subscriber(sub) = &mut s.role else {
                continue;
            };
            if sub.forward(&mut s.rtc, p, now) {
                self.stats.packets_out += 1;
                self.forwarded.push(p.received);
                defer_drain(&mut self.deferred, s);
            }
        }
    }

    fn request_keyframe(&mut self, room_id: &RoomId, rid: Option<Rid>, now: Instant) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        // "Any layer" of a simulcast publisher means the one a new viewer starts on: a
        // worker that has not seen the room's packets yet cannot name it, the home worker can.
        let rid = match rid {
            None if room.home == self.config.id => room.layers.starting_layer(now),
            rid => rid,
        };
        if !room.keyframes.allow(rid, now) {
            debug!(room = %room_id, ?rid, "keyframe request throttled");
            return;
        }
        debug!(room = %room_id, ?rid, local = room.home == self.config.id, "keyframe request");
        if room.home != self.config.id {
            self.out.push_back(Output::Peer(
                room.home,
                PeerMessage::KeyframeRequest {
                    room: room_id.clone(),
                    rid,
                },
            ));
            return;
        }
        let Some(pid) = room.publisher else { return };
        let Some(s) = self.sessions.get_mut(&pid) else {
            return;
        };
        if let Role::Publisher(p) = &s.role {
            p.request_keyframe(&mut s.rtc, rid);
            self.dirty.push((pid, true));
        }
    }

    fn tick(&mut self, now: Instant) {
        let rooms: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.subscribers.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for room in rooms {
            self.allocate_room(&room, now);
        }
    }

    /// Re-decide every local viewer's layer in a room and chase missing keyframes.
    fn allocate_room(&mut self, room_id: &RoomId, now: Instant) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let layers = room.layers.active(now);
        let mut wanted = Vec::new();
        for id in room.subscribers.clone() {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if s.state != SessionState::Connected {
                continue;
            }
            let Role::Subscriber(sub) = &mut s.role else {
                continue;
            };
            let desired = sub.allocate(now, &layers);
            s.rtc
                .bwe()
                .set_bitrate(Bitrate::from(0.0), Bitrate::from(desired as f64));
            if let Some((rid, _)) = sub.awaiting_keyframe() {
                // A viewer that has shown nothing yet may start from the cached keyframe
                // (a switching viewer may not: its picture would jump back in time).
                let fresh = sub.layers().0.is_none();
                let sent = if fresh {
                    replay_cached(&room.gops, sub, &mut s.rtc, rid, now)
                } else {
                    0
                };
                if sent > 0 {
                    self.stats.packets_out += sent;
                    defer_drain(&mut self.deferred, s);
                    continue;
                }
                if !wanted.contains(&rid) {
                    wanted.push(rid);
                }
                sub.keyframe_requested(now);
            }
        }
        for rid in wanted {
            self.request_keyframe(room_id, rid, now);
        }
    }

    fn layer_state(&mut self, id: SessionId, now: Instant) -> Option<LayerState> {
        let s = self.sessions.get(&id)?;
        let Role::Subscriber(sub) = &s.role else {
            return None;
        };
        let available = self
            .rooms
            .get_mut(&s.room)
            .map(|r| r.layers.active(now))
            .unwrap_or_default()
            .into_iter()
            .map(|(r, _)| r.to_string())
            .collect();
        let (current, target) = sub.layers();
        Some(LayerState {
            pinned: match sub.choice() {
                LayerChoice::Auto => None,
                LayerChoice::Pinned(r) => Some(r.to_string()),
            },
            current: current.map(|r| r.to_string()),
            target: target.map(|r| r.to_string()),
            available,
            estimate_bps: sub.estimate_bps,
        })
    }
}

/// ICE credentials need to be unguessable only to an off-path attacker; mixing the time
/// with a process-wide counter through a hash keeps this crate free of an RNG dependency.
/// List a viewer that had media written for draining at the next output, once.
fn defer_drain(deferred: &mut Vec<SessionId>, s: &mut Session) {
    if !s.pending_drain {
        s.pending_drain = true;
        deferred.push(s.id);
    }
}

/// Start a viewer from the room's cached group of pictures for `rid`; the packets written.
fn replay_cached(
    gops: &GopCache,
    sub: &mut Subscriber,
    rtc: &mut Rtc,
    rid: Option<Rid>,
    now: Instant,
) -> u64 {
    let packets = gops.replay(rid, now, REPLAY_MAX_AGE).unwrap_or_default();
    let sent = packets.iter().map(|p| u64::from(sub.forward(rtc, p, now))).sum();
    if sent > 0 {
        debug!(?rid, packets = sent, "viewer started from the cached keyframe");
    }
    sent
}

fn random_token(now: Instant, len: usize) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(len);
    let state = RandomState::new();
    let mut i = 0u64;
    while out.len() < len {
        let mut h = state.build_hasher();
        h.write_u64(i);
        std::hash::Hash::hash(&now, &mut h);
        let mut v = h.finish();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(v % ALPHABET.len() as u64) as usize] as char);
            v /= ALPHABET.len() as u64;
        }
        i += 1;
    }
    out
}
