//! Keyframe requests: throttled per room and layer, routed to the room's home worker.

use std::time::Instant;

use str0m::media::Rid;
use tracing::debug;

use super::Worker;
use super::input::PeerMessage;
use super::output::Output;
use super::session::Role;
use crate::ids::RoomId;

impl Worker {
    pub(super) fn request_keyframe(&mut self, room_id: &RoomId, rid: Option<Rid>, now: Instant) {
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
            self.source_keyframe(pid);
            return;
        };
        if let Role::Publisher(p) = &s.role {
            p.request_keyframe(&mut s.rtc, rid);
            self.dirty.push((pid, true));
        }
    }
}
