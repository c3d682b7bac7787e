//! An in-memory world for driving [`Worker`]s: str0m peers as publishers and viewers, a
//! network of queues in simulated time, and the messages workers hand each other.
//!
//! Nothing here opens a socket, starts a thread or reads the clock: time is an `Instant`
//! that the simulation moves to the next thing due (a datagram's arrival, a str0m timeout,
//! a frame to encode).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Rtc, RtcConfig};

use super::super::{Command, Datagram, Input, Output, PeerMessage, SfuEvent, Worker, WorkerConfig};
use crate::codec::{CodecKind, is_keyframe};
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::session::{SessionConfig, SessionKind, build_session};
use crate::tap::{TapId, TapPacket, TapQueue};

/// One simulcast layer a test publisher sends.
#[derive(Debug, Clone, Copy)]
pub struct LayerSpec {
    pub rid: &'static str,
    /// Bytes per frame (30 frames a second).
    pub frame_bytes: usize,
}

/// One layer (no simulcast) of about 500 kbit/s.
pub const ONE_LAYER: [LayerSpec; 1] = [LayerSpec {
    rid: "",
    frame_bytes: 1_500,
}];

/// Three layers at roughly 150 kbit/s, 500 kbit/s and 1.5 Mbit/s, named as Chromium names
/// them (quarter, half, full).
pub const SIMULCAST: [LayerSpec; 3] = [
    LayerSpec {
        rid: "q",
        frame_bytes: 600,
    },
    LayerSpec {
        rid: "h",
        frame_bytes: 2_000,
    },
    LayerSpec {
        rid: "f",
        frame_bytes: 6_200,
    },
];

/// How long the simulated workers give a session to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

const FRAME: Duration = Duration::from_millis(33);
/// How long after a keyframe request the publisher's next keyframe comes.
const KEYFRAME_DELAY: Duration = Duration::from_millis(100);
const AUDIO_FRAME: Duration = Duration::from_millis(20);
/// Payload bytes per RTP packet of a video frame (after the VP8 descriptor).
const CHUNK: usize = 1_000;

/// A packet a viewer received, decoded from the test payload layout.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub kind: MediaKind,
    /// Extended sequence number as the viewer's stack reports it.
    pub seq: u64,
    pub rtp_time: u32,
    /// Index into the publisher's layers (video).
    pub layer: u8,
    /// The first packet of a keyframe.
    pub keyframe: bool,
    /// Which publisher session sent it (video).
    pub publisher: u8,
}

/// What a publisher client does beside its `Rtc`.
#[derive(Debug)]
pub struct Sender {
    pub layers: Vec<LayerSpec>,
    video_mid: Mid,
    audio_mid: Mid,
    vp8: Option<Pt>,
    opus: Option<Pt>,
    /// Next extended sequence number per layer.
    seq: Vec<u64>,
    audio_seq: u64,
    frame: u32,
    next_frame: Instant,
    next_audio: Instant,
    /// When each layer owes a keyframe (asked for by PLI, or at start).
    keyframe_due: Vec<Option<Instant>>,
    /// Keyframe requests received: when, for which layer.
    pub requests: Vec<(Instant, Option<Rid>)>,
    /// A tag written into every packet, to tell publisher sessions apart at the viewer.
    tag: u8,
    pub sending: bool,
    /// Which layers are being sent (a publisher short of bandwidth stops its top layers).
    pub layer_on: Vec<bool>,
}

/// What a viewer client collects.
#[derive(Debug, Default)]
pub struct Viewer {
    pub received: Vec<Received>,
}

/// A client's role.
#[derive(Debug)]
pub enum Role {
    Publisher(Box<Sender>),
    Viewer(Viewer),
}

/// Rate limit on the path from the worker to one client: a FIFO drained at `bps`.
#[derive(Debug, Clone, Copy)]
pub struct Shaper {
    pub bps: u64,
    /// Datagrams that would wait longer than this in the queue are dropped.
    pub max_queue: Duration,
}

/// A str0m peer on the client side of the SFU.
#[derive(Debug)]
pub struct Client {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub session: SessionId,
    pub worker: usize,
    pub role: Role,
    pub connected: bool,
    timeout: Instant,
    /// Shaping of what the worker sends here, if any.
    pub downlink: Option<Shaper>,
    downlink_busy_until: Instant,
    pub downlink_dropped: u64,
}

impl Client {
    pub fn viewer(&self) -> &Viewer {
        match &self.role {
            Role::Viewer(v) => v,
            Role::Publisher(_) => panic!("client {} is a publisher", self.session),
        }
    }

    pub fn sender(&mut self) -> &mut Sender {
        match &mut self.role {
            Role::Publisher(p) => p,
            Role::Viewer(_) => panic!("client {} is a viewer", self.session),
        }
    }
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

/// Counts of the messages workers handed each other, by kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct PeerCounts {
    pub media: u64,
    pub keyframe_requests: u64,
    pub interest_on: u64,
    pub interest_off: u64,
}

/// The simulated world.
pub struct Sim {
    pub now: Instant,
    pub workers: Vec<Worker>,
    worker_timeouts: Vec<Instant>,
    worker_addrs: Vec<SocketAddr>,
    pub clients: Vec<Client>,
    net: Vec<InFlight>,
    /// One-way delay of every path.
    pub latency: Duration,
    /// How long datagrams wait in a worker's socket buffer before the worker reads them (a
    /// worker that is behind): they reach it with a kernel receive time this much earlier.
    pub socket_wait: Duration,
    peer_queue: Vec<(WorkerId, PeerMessage)>,
    pub peer_counts: PeerCounts,
    pub events: Vec<SfuEvent>,
    next_id: u64,
    next_tag: u8,
}

impl Sim {
    /// `workers` workers with no sessions.
    pub fn new(workers: usize) -> Sim {
        if let Ok(filter) = std::env::var("SIM_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let now = Instant::now();
        Sim {
            now,
            workers: (0..workers)
                .map(|i| {
                    Worker::new(
                        WorkerConfig {
                            id: WorkerId(i),
                            workers,
                            tick: Duration::from_millis(100),
                            initial_bwe_bps: 1_000_000,
                            connect_timeout: CONNECT_TIMEOUT,
                        },
                        now,
                    )
                })
                .collect(),
            worker_timeouts: vec![now; workers],
            worker_addrs: (0..workers)
                .map(|i| SocketAddr::from(([10, 0, 0, 1], 8189 + i as u16)))
                .collect(),
            clients: Vec::new(),
            net: Vec::new(),
            latency: Duration::from_millis(5),
            socket_wait: Duration::ZERO,
            peer_queue: Vec::new(),
            peer_counts: PeerCounts::default(),
            events: Vec::new(),
            next_id: 1,
            next_tag: 0,
        }
    }

    /// The room's home worker index (where its publisher must go).
    pub fn home(&self, room: &str) -> usize {
        crate::room::home_worker(&RoomId::new(room), self.workers.len()).0
    }

    /// A publisher of `layers` (one layer: no simulcast) joins `room` on its home worker.
    /// `first_seq` is the extended sequence number of every layer's first packet.
    pub fn publish(&mut self, room: &str, layers: &[LayerSpec], first_seq: u64) -> usize {
        let worker = self.home(room);
        let mut rtc = RtcConfig::new().set_rtp_mode(true).build(self.now);
        let mut api = rtc.sdp_api();
        let simulcast = (layers.len() > 1).then(|| {
            let mut s = Simulcast::new();
            for l in layers {
                s.add_send_layer(SimulcastLayer::new(l.rid));
            }
            s
        });
        let audio_mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let video_mid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast);
        let offer = api.apply().expect("an offer with two media sections");
        let tag = self.next_tag;
        self.next_tag += 1;
        let sender = Sender {
            layers: layers.to_vec(),
            video_mid,
            audio_mid,
            vp8: None,
            opus: None,
            seq: vec![first_seq; layers.len()],
            audio_seq: first_seq,
            frame: 0,
            next_frame: self.now,
            next_audio: self.now,
            keyframe_due: vec![Some(self.now); layers.len()],
            requests: Vec::new(),
            tag,
            sending: true,
            layer_on: vec![true; layers.len()],
        };
        self.join(rtc, offer, room, worker, Role::Publisher(Box::new(sender)))
    }

    /// A viewer joins `room` on worker `worker`.
    pub fn view(&mut self, room: &str, worker: usize) -> usize {
        let mut rtc = RtcConfig::new().set_rtp_mode(true).build(self.now);
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let offer = api.apply().expect("an offer with two media sections");
        self.join(rtc, offer, room, worker, Role::Viewer(Viewer::default()))
    }

    /// The WHIP/WHEP exchange: the server answers the client's offer, the session moves to
    /// its worker.
    fn join(
        &mut self,
        mut rtc: Rtc,
        (offer, pending): (SdpOffer, SdpPendingOffer),
        room: &str,
        worker: usize,
        role: Role,
    ) -> usize {
        let kind = match role {
            Role::Publisher(_) => SessionKind::Publisher,
            Role::Viewer(_) => SessionKind::Subscriber,
        };
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let addr = SocketAddr::from(([10, 1, 0, 1], 40_000 + id.0 as u16));
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a host candidate"));
        let config = SessionConfig {
            candidates: vec![self.worker_addrs[worker]],
            video_codec: (kind == SessionKind::Subscriber).then_some(Codec::Vp8),
            estimate_bandwidth: true,
            initial_bwe_bps: 1_000_000,
        };
        let setup = build_session(&config, kind, &offer.to_sdp_string(), self.now)
            .expect("the server accepts the offer");
        let answer = SdpAnswer::from_sdp_string(&setup.answer).expect("the server's answer parses");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("the client accepts the answer");
        self.workers[worker].handle_input(Input::Command(
            self.now,
            Command::AddSession {
                id,
                room: RoomId::new(room),
                kind,
                rtc: Box::new(setup.rtc),
            },
        ));
        self.clients.push(Client {
            rtc,
            addr,
            session: id,
            worker,
            role,
            connected: false,
            timeout: self.now,
            downlink: None,
            downlink_busy_until: self.now,
            downlink_dropped: 0,
        });
        self.clients.len() - 1
    }

    /// End a client's session from the server side (a WHIP/WHEP DELETE).
    pub fn close(&mut self, client: usize) {
        let c = &mut self.clients[client];
        if let Role::Publisher(p) = &mut c.role {
            p.sending = false;
        }
        let (worker, id) = (c.worker, c.session);
        self.workers[worker].handle_input(Input::Command(self.now, Command::Close { id }));
    }

    /// Tap `room` on its home worker into a queue of `capacity` packets.
    pub fn tap(&mut self, room: &str, capacity: usize) -> TestQueue {
        let queue = TestQueue {
            inner: Arc::new(Mutex::new(QueueState {
                capacity,
                packets: Vec::new(),
                consumed: 0,
            })),
        };
        let id = TapId(self.next_id);
        self.next_id += 1;
        let home = self.home(room);
        self.workers[home].handle_input(Input::Command(
            self.now,
            Command::AddTap {
                id,
                room: RoomId::new(room),
                queue: Box::new(queue.clone()),
            },
        ));
        queue
    }

    /// The worker's view of a viewer's layers and estimate.
    pub fn layer_state(&mut self, client: usize) -> Option<super::super::LayerState> {
        let (worker, id) = (self.clients[client].worker, self.clients[client].session);
        let out = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = out.clone();
        self.workers[worker].handle_input(Input::Command(
            self.now,
            Command::QueryLayer {
                id,
                reply: Box::new(move |s| *slot.lock().expect("not poisoned") = s),
            },
        ));
        out.lock().expect("not poisoned").take()
    }

    /// Run until `until` has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.step(until);
        }
    }

    /// Run until `done` holds, for at most `limit`; whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.now + limit;
        while self.now < until {
            if done(self) {
                return true;
            }
            self.step(until);
        }
        done(self)
    }

    fn step(&mut self, until: Instant) {
        self.flush();
        let next = self
            .worker_timeouts
            .iter()
            .copied()
            .chain(self.clients.iter().map(|c| c.timeout))
            .chain(self.net.iter().map(|p| p.at))
            .chain(self.clients.iter().filter_map(|c| match &c.role {
                Role::Publisher(p) if p.sending && c.connected => Some(p.next_frame.min(p.next_audio)),
                _ => None,
            }))
            .min()
            .unwrap_or(until)
            .min(until);
        // Something in the past that stays due would stall the clock: always move a little.
        self.now = next.max(self.now + Duration::from_micros(200));

        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|p| p.at <= now);
        self.net = later;
        for p in due {
            self.deliver(p);
        }
        for (i, w) in self.workers.iter_mut().enumerate() {
            if self.worker_timeouts[i] <= now {
                w.handle_input(Input::Timeout(now));
            }
        }
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            if c.timeout <= now && c.rtc.is_alive() {
                c.rtc
                    .handle_input(str0m::Input::Timeout(now))
                    .expect("a client handles a timeout");
                self.poll_client(i);
            }
        }
        for i in 0..self.clients.len() {
            self.send_media(i);
        }
    }

    fn deliver(&mut self, p: InFlight) {
        if let Some(w) = self.worker_addrs.iter().position(|a| *a == p.to) {
            self.workers[w].handle_input(Input::Datagram(
                self.now,
                Datagram {
                    source: p.from,
                    destination: p.to,
                    data: &p.data,
                    arrived: self.now - self.socket_wait,
                },
            ));
            return;
        }
        let Some(c) = self.clients.iter_mut().find(|c| c.addr == p.to) else {
            return;
        };
        if !c.rtc.is_alive() {
            return;
        }
        let input = str0m::Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source: p.from,
                destination: p.to,
                contents: p.data.as_slice().try_into().expect("a datagram str0m can parse"),
            },
        );
        c.rtc.handle_input(input).expect("a client takes a datagram");
        // str0m's RTP mode holds one received packet until the next poll: poll after
        // every input, as a driver must.
        let i = self
            .clients
            .iter()
            .position(|c| c.addr == p.to)
            .expect("found above");
        self.poll_client(i);
    }

    /// Poll every worker and client until nothing more comes out.
    fn flush(&mut self) {
        loop {
            for i in 0..self.workers.len() {
                loop {
                    match self.workers[i].poll_output() {
                        Output::Transmit(t) => self.send(t.source, t.destination, t.contents.to_vec()),
                        Output::Peer(w, m) => {
                            match &m {
                                PeerMessage::Media(_) => self.peer_counts.media += 1,
                                PeerMessage::KeyframeRequest { .. } => {
                                    self.peer_counts.keyframe_requests += 1
                                }
                                PeerMessage::Interest { on: true, .. } => self.peer_counts.interest_on += 1,
                                PeerMessage::Interest { on: false, .. } => self.peer_counts.interest_off += 1,
                            }
                            self.peer_queue.push((w, m));
                        }
                        Output::Event(e) => self.events.push(e),
                        Output::Timeout(t) => {
                            self.worker_timeouts[i] = t;
                            break;
                        }
                    }
                }
            }
            if self.peer_queue.is_empty() {
                break;
            }
            for (w, m) in std::mem::take(&mut self.peer_queue) {
                self.workers[w.0].handle_input(Input::Peer(self.now, m));
            }
        }
        for i in 0..self.clients.len() {
            self.poll_client(i);
        }
    }

    fn poll_client(&mut self, i: usize) {
        loop {
            let c = &mut self.clients[i];
            if !c.rtc.is_alive() {
                c.timeout = self.now + Duration::from_secs(3600);
                break;
            }
            match c.rtc.poll_output().expect("a client polls") {
                str0m::Output::Timeout(t) => {
                    c.timeout = t;
                    break;
                }
                str0m::Output::Transmit(t) => self.send(t.source, t.destination, t.contents.to_vec()),
                str0m::Output::Event(e) => self.client_event(i, e),
            }
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let mut at = self.now + self.latency;
        if let Some(c) = self.clients.iter_mut().find(|c| c.addr == to)
            && let Some(shaper) = c.downlink
        {
            let start = c.downlink_busy_until.max(self.now);
            if start - self.now > shaper.max_queue {
                c.downlink_dropped += 1;
                return;
            }
            let on_wire = Duration::from_nanos(data.len() as u64 * 8 * 1_000_000_000 / shaper.bps);
            c.downlink_busy_until = start + on_wire;
            at = c.downlink_busy_until + self.latency;
        }
        self.net.push(InFlight { at, from, to, data });
    }

    fn client_event(&mut self, i: usize, e: Event) {
        let now = self.now;
        let c = &mut self.clients[i];
        match e {
            Event::Connected => c.connected = true,
            Event::KeyframeRequest(r) => {
                if let Role::Publisher(p) = &mut c.role {
                    p.requests.push((now, r.rid));
                    // An encoder takes a few frames to answer: the frames in between are deltas.
                    let due = now + KEYFRAME_DELAY;
                    for (l, spec) in p.layers.iter().enumerate() {
                        if r.rid.is_none_or(|rid| Rid::from(spec.rid) == rid) {
                            p.keyframe_due[l].get_or_insert(due);
                        }
                    }
                }
            }
            Event::RtpPacket(pkt) => {
                if let Role::Viewer(v) = &mut c.role {
                    let kind = if pkt.header.payload_type == viewer_pt(&c.rtc, Codec::Vp8) {
                        MediaKind::Video
                    } else {
                        MediaKind::Audio
                    };
                    v.received.push(decode(now, kind, &pkt));
                }
            }
            _ => {}
        }
    }

    /// Write the frames and audio packets a publisher owes by now.
    fn send_media(&mut self, i: usize) {
        let now = self.now;
        let c = &mut self.clients[i];
        if !c.connected {
            return;
        }
        let Role::Publisher(p) = &mut c.role else { return };
        if !p.sending {
            return;
        }
        let vp8 = *p.vp8.get_or_insert_with(|| sender_pt(&c.rtc, Codec::Vp8));
        let opus = *p.opus.get_or_insert_with(|| sender_pt(&c.rtc, Codec::Opus));
        while p.next_audio <= now {
            let n = p.audio_seq;
            p.audio_seq += 1;
            let time = (n as u32).wrapping_mul(960);
            let mut api = c.rtc.direct_api();
            let tx = api
                .stream_tx_by_mid(p.audio_mid, None)
                .expect("the audio send stream exists");
            tx.write_rtp(RtpWrite::new(
                opus,
                SeqNo::from(n),
                time,
                now,
                vec![0xfc, p.tag, 1, 2, 3],
            ));
            p.next_audio += AUDIO_FRAME;
        }
        while p.next_frame <= now {
            let frame = p.frame;
            p.frame += 1;
            let time = frame.wrapping_mul(3_000);
            for (l, spec) in p.layers.clone().iter().enumerate() {
                if !p.layer_on[l] {
                    // A layer coming back starts with a keyframe, as an encoder's does.
                    p.keyframe_due[l] = Some(now);
                    continue;
                }
                let key = p.keyframe_due[l].is_some_and(|t| t <= now);
                if key {
                    p.keyframe_due[l] = None;
                }
                let rid = (p.layers.len() > 1).then(|| Rid::from(spec.rid));
                let chunks = spec.frame_bytes.div_ceil(CHUNK);
                for k in 0..chunks {
                    let n = p.seq[l];
                    p.seq[l] += 1;
                    let payload = vp8_packet(k == 0, key, l as u8, frame, p.tag, CHUNK.min(spec.frame_bytes));
                    let mut api = c.rtc.direct_api();
                    let tx = api
                        .stream_tx_by_mid(p.video_mid, rid)
                        .expect("every layer has a send stream");
                    tx.write_rtp(
                        RtpWrite::new(vp8, SeqNo::from(n), time, now, payload)
                            .marker(k + 1 == chunks)
                            .nackable(true),
                    );
                }
            }
            p.next_frame += FRAME;
        }
    }
}

/// A tap's queue: holds up to `capacity` packets the test has not consumed.
#[derive(Debug, Clone)]
pub struct TestQueue {
    pub inner: Arc<Mutex<QueueState>>,
}

#[derive(Debug)]
pub struct QueueState {
    pub capacity: usize,
    /// Every packet taken, in order.
    pub packets: Vec<TapPacket>,
    /// How many of them the consumer has taken out (the rest fill the queue).
    pub consumed: usize,
}

impl TestQueue {
    /// The consumer takes everything queued.
    pub fn drain(&self) {
        let mut q = self.inner.lock().expect("not poisoned");
        q.consumed = q.packets.len();
    }

    /// Every packet the tap queued so far, decoded like a viewer's.
    pub fn received(&self) -> Vec<Received> {
        let q = self.inner.lock().expect("not poisoned");
        q.packets
            .iter()
            .map(|p| decode_payload(p.received, p.kind, p.seq, p.rtp_time, &p.payload))
            .collect()
    }
}

impl TapQueue for TestQueue {
    fn offer(&self, packet: TapPacket) -> bool {
        let mut q = self.inner.lock().expect("not poisoned");
        if q.packets.len() - q.consumed >= q.capacity {
            return false;
        }
        q.packets.push(packet);
        true
    }
}

/// The payload type the client negotiated for `codec`.
fn sender_pt(rtc: &Rtc, codec: Codec) -> Pt {
    rtc.codec_config()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
        .expect("the codec was negotiated")
}

fn viewer_pt(rtc: &Rtc, codec: Codec) -> Pt {
    sender_pt(rtc, codec)
}

/// A VP8 RTP payload: descriptor with a 15-bit picture id, then the test fields in every
/// packet: the VP8 frame tag's key bit (meaningful on the first packet), layer, frame
/// counter and publisher tag, padded to `len`.
pub fn vp8_packet(start: bool, key: bool, layer: u8, frame: u32, tag: u8, len: usize) -> Vec<u8> {
    let pic = (frame & 0x7fff) as u16;
    let mut b = Vec::with_capacity(len + 4);
    b.push(0x80 | if start { 0x10 } else { 0 });
    b.push(0x80);
    b.push(0x80 | (pic >> 8) as u8);
    b.push(pic as u8);
    b.push(if key { 0x00 } else { 0x01 });
    b.push(layer);
    b.extend_from_slice(&frame.to_be_bytes());
    b.push(tag);
    b.resize(len + 4, 0);
    b
}

fn decode(at: Instant, kind: MediaKind, pkt: &str0m::rtp::RtpPacket) -> Received {
    decode_payload(at, kind, *pkt.seq_no, pkt.header.timestamp, &pkt.payload)
}

fn decode_payload(at: Instant, kind: MediaKind, seq: u64, rtp_time: u32, p: &[u8]) -> Received {
    let (layer, publisher, keyframe) = if kind == MediaKind::Video && p.len() >= 11 {
        (p[5], p[10], is_keyframe(CodecKind::Vp8, p))
    } else {
        (0, p.get(1).copied().unwrap_or(0), false)
    };
    Received {
        at,
        kind,
        seq,
        rtp_time,
        layer,
        keyframe,
        publisher,
    }
}
