//! Publisher packets to local viewers and, once each, to the other workers of the room.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::media::{MediaKind, Rid};
use tracing::debug;

use super::Worker;
use super::input::PeerMessage;
use super::output::Output;
use super::session::{Role, SessionState, defer_drain};
use crate::forwarder::Late;
use crate::gop_cache::GopCache;
use crate::packet::MediaPacket;
use crate::room::{Room, home_worker};
use crate::subscriber::Subscriber;

/// A viewer that connects starts from a cached keyframe at most this old (bigger ones mean a
/// longer burst of stale frames).
pub(super) const REPLAY_MAX_AGE: Duration = Duration::from_millis(600);

impl Worker {
    pub(super) fn peer(&mut self, now: Instant, m: PeerMessage) {
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

    /// A packet from a local publisher: to local subscribers and once to every other
    /// interested worker.
    pub(super) fn fan_out(&mut self, p: Arc<MediaPacket>, now: Instant) {
        if let Some(room) = self.rooms.get_mut(&p.room) {
            room.health.record(&p, now);
            for w in &room.remote_workers {
                self.out
                    .push_back(Output::Peer(*w, PeerMessage::Media(p.clone())));
            }
        }
        self.deliver(&p, now);
    }

    pub(super) fn deliver(&mut self, p: &Arc<MediaPacket>, now: Instant) {
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        if p.kind == MediaKind::Video {
            room.layers.record(p.rid, p.payload.len(), now);
            if !room.subscribers.is_empty() || !room.taps.is_empty() {
                room.gops.record(p, now);
            }
        }
        if !room.taps.is_empty() {
            let mut wants = Vec::new();
            let (queued, dropped) = Self::feed_taps(&mut room.taps, room.declared_top, p, now, &mut wants);
            self.stats.tap_packets += queued;
            self.stats.tap_drops += dropped;
            if !wants.is_empty() {
                let room_id = p.room.clone();
                for rid in wants {
                    self.request_keyframe(&room_id, rid, now);
                }
            }
        }
        let late = self.late(p, now);
        let Some(room) = self.rooms.get(&p.room) else {
            return;
        };
        let mut restart = Vec::new();
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
            match if late { sub.late(p, now) } else { Late::Send } {
                Late::Send => {
                    if sub.forward(&mut s.rtc, p, now) {
                        self.stats.packets_out += 1;
                        self.forwarded.push(p.received);
                        defer_drain(&mut self.deferred, s);
                    }
                }
                Late::Skip => self.stats.late_drops += 1,
                Late::Restart => {
                    self.stats.late_drops += 1;
                    let rid = sub.restart_layer();
                    if !restart.contains(&rid) {
                        restart.push(rid);
                    }
                }
            }
        }
        if !restart.is_empty() {
            debug!(room = %p.room, age = ?now.saturating_duration_since(p.received), "media too old for viewers; they wait for a keyframe");
            self.stats.late_restarts += restart.len() as u64;
            for rid in restart {
                self.request_keyframe(&p.room, rid, now);
            }
        }
    }

    /// Whether `p` is too old to send: past its age budget while the worker has been behind
    /// for longer than [`BURST_ALLOWANCE`]. A packet within the video budget marks the worker
    /// as caught up.
    fn late(&mut self, p: &MediaPacket, now: Instant) -> bool {
        let age = now.saturating_duration_since(p.received);
        if age <= VIDEO_AGE_BUDGET {
            self.on_time_at = now;
        }
        age > age_budget(p.kind) && now.saturating_duration_since(self.on_time_at) > BURST_ALLOWANCE
    }
}

/// Video older than this when its turn to be written to viewers comes is not sent (once the
/// worker has been behind for [`BURST_ALLOWANCE`]): the viewers it was for skip to the next
/// keyframe. Counted from the kernel's receive time, it bounds how stale a busy worker's media
/// can be (its backlog drains instead of growing). A jitter buffer holds tens of milliseconds,
/// and the SFU's own forwarding delay at 500 viewers on 2 cores peaks near 40 ms
/// (docs/benchmarks.md), so the budget sits above that.
pub const VIDEO_AGE_BUDGET: Duration = Duration::from_millis(80);

/// How long a worker may stay behind the budget before late media is skipped. Handing one
/// keyframe (100+ packets) to a few hundred viewers takes longer than the budget, and the
/// frames behind it wait meanwhile; skipping them would restart every viewer, whose keyframe
/// request would bring the next such burst (a livelock). A backlog that a burst left drains
/// within a few frames; one that lasts longer than this is overload.
pub const BURST_ALLOWANCE: Duration = Duration::from_millis(250);

/// Audio older than this is not sent. Each packet stands alone (the decoder conceals a gap)
/// and costs little to send, so it keeps flowing longer than video does.
pub const AUDIO_AGE_BUDGET: Duration = Duration::from_millis(200);

fn age_budget(kind: MediaKind) -> Duration {
    match kind {
        MediaKind::Video => VIDEO_AGE_BUDGET,
        MediaKind::Audio => AUDIO_AGE_BUDGET,
    }
}

/// Start a viewer from the room's cached group of pictures for `rid`; the packets written.
pub(super) fn replay_cached(
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
