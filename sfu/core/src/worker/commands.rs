//! Control-plane requests: adopt, close, pin a layer, query, trickle.

use std::time::Instant;

use str0m::{IceCreds, Rtc};

use super::Worker;
use super::input::{Command, PeerMessage};
use super::output::Output;
use super::session::{MAX_REMOTE_CANDIDATES, Role, Session, SessionState};
use crate::error::SfuError;
use crate::ids::{RoomId, SessionId};
use crate::publisher::Publisher;
use crate::room::{Room, home_worker};
use crate::session::SessionKind;
use crate::subscriber::Subscriber;

impl Worker {
    pub(super) fn command(&mut self, now: Instant, c: Command) {
        match c {
            Command::AddSession { id, room, kind, rtc } => self.add_session(now, id, room, kind, *rtc),
            Command::AddTap { id, room, queue } => self.add_tap(id, room, queue, now),
            Command::RemoveTap { id, room } => self.remove_tap(id, &room),
            Command::TapKeyframe { id, room } => self.tap_keyframe(id, &room, now),
            Command::AddSource { id, room, keyframes } => self.add_source(id, room, keyframes),
            Command::SourceMedia {
                id,
                received,
                packets,
            } => self.source_media(id, received, packets),
            Command::Close { id } => {
                if self.remove_source(id) {
                    return;
                }
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
                let candidates = s.remote_candidates.saturating_add(fragment.candidates.len());
                if candidates > MAX_REMOTE_CANDIDATES {
                    reply(Err(SfuError::TooManyCandidates(MAX_REMOTE_CANDIDATES)));
                    return;
                }
                s.remote_candidates = candidates;
                let mut local = None;
                if let Some(remote) = fragment.restart {
                    // str0m's generator: random, and the lengths ICE requires.
                    let creds = IceCreds::new();
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

    pub(super) fn add_session(
        &mut self,
        now: Instant,
        id: SessionId,
        room_id: RoomId,
        kind: SessionKind,
        rtc: Rtc,
    ) {
        let home = home_worker(&room_id, self.config.workers);
        let me = self.config.id;
        let mut early_keyframe = None;
        let role = match kind {
            SessionKind::Publisher => Role::Publisher(Publisher::new(self.take_room(&room_id, id, home))),
            SessionKind::Subscriber => {
                let room = self
                    .rooms
                    .entry(room_id.clone())
                    .or_insert_with(|| Room::new(home));
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
                timer_at: None,
                addrs: Vec::new(),
                pending_drain: false,
                remote_candidates: 0,
            }),
        );
        self.dirty.push((id, true));
        self.connect_deadlines
            .push_back((now + self.config.connect_timeout, id));
        if let Some(rid) = early_keyframe {
            let room = self.sessions[&id].room.clone();
            self.request_keyframe(&room, rid, now);
        }
    }
}
