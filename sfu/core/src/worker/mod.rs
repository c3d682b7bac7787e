//! The sans-IO engine of one worker thread: sessions, room views, fan-out.
//!
//! A [`Worker`] is driven by [`Worker::handle_input`] and drained by [`Worker::poll_output`]
//! (see the crate docs for the loop). Its parts, one file each:
//!
//! * [`input`] and [`output`]: the types that cross the boundary with the driver;
//! * `routing`: which session a datagram belongs to;
//! * `commands`: control-plane requests (adopt, close, pin a layer, trickle, queries);
//! * `dispatch`: running a session's str0m state machine and acting on its events;
//! * `fan_out`: publisher packets to local viewers and, once each, to other workers;
//! * `keyframe_route`: keyframe requests, throttled and routed to the room's home worker;
//! * `allocation`: the periodic tick that re-decides every viewer's layer;
//! * `source`: in-process sources (RTMP, SRT, RTSP ingest) as room publishers;
//! * `taps`: room taps (the LL-HLS bridge's in-process subscribers) on the home worker;
//! * [`stats`]: the counters the driver exports.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHasher;

use crate::ids::{RoomId, SessionId, WorkerId};
use crate::packet::MediaPacket;
use crate::room::Room;

mod allocation;
mod commands;
mod dispatch;
mod fan_out;
pub mod input;
mod keyframe_route;
pub mod output;
mod routing;
mod session;
mod source;
pub mod stats;
mod taps;
#[cfg(test)]
mod tests;
mod timers;

pub use allocation::LayerState;
pub use fan_out::{AUDIO_AGE_BUDGET, BURST_ALLOWANCE, VIDEO_AGE_BUDGET};
pub use input::{Command, Datagram, Input, PeerMessage, Reply};
pub use output::{Output, SfuEvent, Transmit};
pub use stats::{ESTIMATE_BUCKETS_BPS, WorkerStats};

use session::Session;
use timers::Timers;

/// The worker's sessions. Looked up for every viewer of every packet: a fast hash (session ids
/// are the control plane's, not a peer's).
type SessionMap = HashMap<SessionId, Box<Session>, BuildHasherDefault<FxHasher>>;

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
    /// A session not connected (ICE and DTLS) this long after it was created is closed: an
    /// offer whose client never sends a STUN packet must not hold memory forever.
    pub connect_timeout: Duration,
}

/// Viewers drained per [`Worker::poll_output`] step.
const DRAIN_CHUNK: usize = 32;

/// One worker's sessions and rooms. See the crate docs for the loop that drives it.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    sessions: SessionMap,
    sources: HashMap<SessionId, source::Source>,
    timers: Timers,
    by_addr: HashMap<SocketAddr, SessionId>,
    /// Sessions by creation, with the time they must be connected by (in order: one timeout).
    connect_deadlines: VecDeque<(Instant, SessionId)>,
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
    /// When the datagram being handled reached the kernel, until its media packet takes it.
    arrival: Option<Instant>,
    /// When the worker last fanned out a packet within the video age budget.
    on_time_at: Instant,
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
            sessions: SessionMap::default(),
            sources: HashMap::new(),
            timers: Timers::default(),
            by_addr: HashMap::new(),
            connect_deadlines: VecDeque::new(),
            rooms: HashMap::new(),
            out: VecDeque::new(),
            dirty: Vec::new(),
            packets: Vec::new(),
            deferred: Vec::new(),
            forwarded: Vec::new(),
            allocate_soon: Vec::new(),
            now,
            arrival: None,
            on_time_at: now,
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
        self.arrival = match &input {
            Input::Datagram(now, d) => Some(d.arrived.min(*now)),
            _ => None,
        };
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
                let dirty = &mut self.dirty;
                self.timers
                    .take_due(now, &mut self.sessions, |id| dirty.push((id, true)));
                if now >= self.next_tick {
                    self.next_tick = now + self.config.tick;
                    self.reap_unconnected(now);
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
            .timers
            .next(&self.sessions)
            .map_or(self.next_tick, |t| t.min(self.next_tick));
        Output::Timeout(next)
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
}
