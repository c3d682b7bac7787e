//! The periodic tick: each viewer's layer re-decided, missing keyframes chased.

use std::time::Instant;

use str0m::bwe::Bitrate;

use super::Worker;
use super::fan_out::replay_cached;
use super::session::{Role, SessionState, defer_drain};
use crate::allocator::LayerChoice;
use crate::ids::{RoomId, SessionId};

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

impl Worker {
    pub(super) fn tick(&mut self, now: Instant) {
        let rooms: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.subscribers.is_empty() || !r.taps.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for room in rooms {
            self.allocate_room(&room, now);
        }
    }

    /// Re-decide every local viewer's layer in a room and chase missing keyframes.
    pub(super) fn allocate_room(&mut self, room_id: &RoomId, now: Instant) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let layers = room.layers.active(now);
        let mut wanted = Vec::new();
        Self::allocate_taps(&mut room.taps, &layers, now, &mut wanted);
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
                // A viewer that has shown nothing yet may start from the cached keyframe (a
                // switching or restarting viewer may not: its picture would jump back in time).
                let fresh = !sub.video_started();
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

    pub(super) fn layer_state(&mut self, id: SessionId, now: Instant) -> Option<LayerState> {
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
