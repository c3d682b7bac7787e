//! Room taps on the room's home worker: added, fed, kept on the top layer, removed.

use std::sync::Arc;
use std::time::Instant;

use str0m::media::Rid;
use tracing::{debug, info};

use super::Worker;
use super::fan_out::REPLAY_MAX_AGE;
use crate::ids::RoomId;
use crate::packet::MediaPacket;
use crate::room::{Room, home_worker};
use crate::tap::{Tap, TapId, TapOutcome, TapQueue};

impl Worker {
    pub(super) fn add_tap(&mut self, id: TapId, room_id: RoomId, queue: Box<dyn TapQueue>, now: Instant) {
        let home = home_worker(&room_id, self.config.workers);
        if home != self.config.id {
            // The handle routes taps to the home worker: only there does every packet pass.
            debug!(%id, room = %room_id, "tap refused: not this room's home worker");
            return;
        }
        let room = self
            .rooms
            .entry(room_id.clone())
            .or_insert_with(|| Room::new(home));
        let mut tap = Tap::new(id, queue);
        let layers = room.layers.active(now);
        tap.allocate(&layers, now);
        // Start from the cached keyframe when there is a young one: the first LL-HLS part
        // comes a keyframe interval sooner.
        let mut replayed = 0;
        if let Some((rid, _)) = tap.awaiting_keyframe() {
            for p in room.gops.replay(rid, now, REPLAY_MAX_AGE).unwrap_or_default() {
                replayed += u64::from(tap.forward(p, room.declared_top, now) == TapOutcome::Queued);
            }
        }
        info!(%id, room = %room_id, layer = ?tap.layer(), replayed, "tap added");
        let wants = tap.awaiting_keyframe().map(|(rid, _)| rid);
        room.taps.push(tap);
        if let Some(rid) = wants {
            self.request_keyframe(&room_id, rid, now);
        }
    }

    pub(super) fn remove_tap(&mut self, id: TapId, room_id: &RoomId) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let before = room.taps.len();
        room.taps.retain(|t| t.id() != id);
        if room.taps.len() < before {
            info!(%id, room = %room_id, "tap removed");
        }
        if room.is_idle() {
            self.rooms.remove(room_id);
        }
    }

    pub(super) fn tap_keyframe(&mut self, id: TapId, room_id: &RoomId, now: Instant) {
        let layer = self
            .rooms
            .get(room_id)
            .and_then(|r| r.taps.iter().find(|t| t.id() == id))
            .map(|t| t.layer());
        if let Some(rid) = layer {
            self.request_keyframe(room_id, rid, now);
        }
    }

    /// Offer a packet to the room's taps; the keyframes they now need, to request.
    pub(super) fn feed_taps(
        taps: &mut [Tap],
        top: Option<Rid>,
        p: &Arc<MediaPacket>,
        now: Instant,
        wants: &mut Vec<Option<Rid>>,
    ) -> (u64, u64) {
        let (mut queued, mut dropped) = (0, 0);
        for tap in taps {
            match tap.forward(p, top, now) {
                TapOutcome::Queued => queued += 1,
                TapOutcome::Skipped => {}
                TapOutcome::Dropped { wants_keyframe } => {
                    dropped += 1;
                    if wants_keyframe {
                        debug!(tap = %tap.id(), "tap behind: video dropped until the next keyframe");
                        wants.push(tap.layer());
                    }
                }
            }
        }
        (queued, dropped)
    }

    /// Keep each tap on the top layer; the keyframes they wait for, to request.
    pub(super) fn allocate_taps(
        taps: &mut [Tap],
        layers: &[(Rid, u64)],
        now: Instant,
        wants: &mut Vec<Option<Rid>>,
    ) {
        for tap in taps {
            tap.allocate(layers, now);
            if let Some((rid, _)) = tap.awaiting_keyframe() {
                if !wants.contains(&rid) {
                    wants.push(rid);
                }
                tap.keyframe_requested(now);
            }
        }
    }
}
