//! In-process sources (RTMP, SRT, RTSP ingest) as room publishers on the home worker.

use std::sync::Arc;
use std::time::Instant;

use str0m::media::MediaKind;
use str0m::rtp::ExtensionValues;
use tracing::{debug, info};

use super::Worker;
use super::output::{Output, SfuEvent};
use crate::codec::{CodecKind, is_keyframe};
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::packet::MediaPacket;
use crate::room::{Room, home_worker};
use crate::session::SessionKind;
use crate::source::{KeyframeSignal, SourcePacket};

/// A source on its room's home worker.
#[derive(Debug)]
pub(super) struct Source {
    room: RoomId,
    epoch: u32,
    keyframes: KeyframeSignal,
    /// Reported connected (at its first packet: a source that never sends is not live).
    connected: bool,
    video_announced: bool,
}

impl Worker {
    pub(super) fn add_source(&mut self, id: SessionId, room_id: RoomId, keyframes: KeyframeSignal) {
        let home = home_worker(&room_id, self.config.workers);
        if home != self.config.id {
            // The handle sends sources to the home worker; anywhere else nobody would see them.
            debug!(source = %id, room = %room_id, "source refused: not this room's home worker");
            self.source_closed(id, room_id);
            return;
        }
        let epoch = self.take_room(&room_id, id, home);
        info!(source = %id, room = %room_id, epoch, "in-process source publishing");
        self.sources.insert(
            id,
            Source {
                room: room_id.clone(),
                epoch,
                keyframes,
                connected: false,
                video_announced: false,
            },
        );
    }

    pub(super) fn source_media(&mut self, id: SessionId, received: Instant, packets: Vec<SourcePacket>) {
        let Some(source) = self.sources.get_mut(&id) else {
            // Closed or replaced meanwhile: the batch was already in the queue.
            return;
        };
        if !source.connected {
            source.connected = true;
            self.out.push_back(Output::Event(SfuEvent::Connected {
                session: id,
                room: source.room.clone(),
                kind: SessionKind::Publisher,
            }));
        }
        for p in packets {
            let codec = CodecKind::from_codec(p.params.spec().codec);
            if p.kind == MediaKind::Video && !source.video_announced {
                source.video_announced = true;
                self.out.push_back(Output::Event(SfuEvent::PublisherVideo {
                    session: id,
                    room: source.room.clone(),
                    codec: p.params.spec().codec,
                    simulcast: false,
                }));
            }
            self.packets.push(Arc::new(MediaPacket {
                room: source.room.clone(),
                kind: p.kind,
                rid: None,
                epoch: source.epoch,
                params: p.params,
                codec,
                seq: p.seq,
                rtp_time: p.rtp_time,
                marker: p.marker,
                // Audio counts as a keyframe throughout (forwarders start anywhere on it).
                keyframe: is_keyframe(codec, &p.payload),
                ext: ExtensionValues::default(),
                vp8: None,
                received,
                capture: p.capture,
                payload: p.payload,
            }));
        }
    }

    /// End a source; `false` when `id` is not one.
    pub(super) fn remove_source(&mut self, id: SessionId) -> bool {
        let Some(source) = self.sources.remove(&id) else {
            return false;
        };
        if let Some(room) = self.rooms.get_mut(&source.room) {
            if room.publisher == Some(id) {
                room.publisher = None;
            }
            if room.is_idle() {
                self.rooms.remove(&source.room);
            }
        }
        info!(source = %id, room = %source.room, "in-process source ended");
        self.source_closed(id, source.room);
        true
    }

    fn source_closed(&mut self, id: SessionId, room: RoomId) {
        self.out.push_back(Output::Event(SfuEvent::Closed {
            session: id,
            room,
            kind: SessionKind::Publisher,
        }));
    }

    /// Ask a source for a keyframe; `false` when `id` is not one.
    pub(super) fn source_keyframe(&mut self, id: SessionId) -> bool {
        match self.sources.get(&id) {
            Some(s) => {
                s.keyframes.raise();
                true
            }
            None => false,
        }
    }

    /// `id` becomes the room's publisher: the old one, a session or a source, is closed, and
    /// the room starts a new epoch (returned).
    pub(super) fn take_room(&mut self, room_id: &RoomId, id: SessionId, home: WorkerId) -> u32 {
        self.replace_publisher(room_id);
        let room = self
            .rooms
            .entry(room_id.clone())
            .or_insert_with(|| Room::new(home));
        room.epoch += 1;
        room.health.reset();
        room.declared_top = None;
        room.publisher = Some(id);
        room.epoch
    }

    /// The old publisher of a room, a session or a source, is closed.
    fn replace_publisher(&mut self, room_id: &RoomId) {
        let Some(old) = self.rooms.get_mut(room_id).and_then(|r| r.publisher.take()) else {
            return;
        };
        info!(room = %room_id, "publisher replaced by a new one");
        if let Some(s) = self.sessions.get_mut(&old) {
            s.rtc.disconnect();
            self.dirty.push((old, false));
        } else {
            self.remove_source(old);
        }
    }
}
