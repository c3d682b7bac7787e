//! In-process sources as their owner (an ingest connection) holds them.
//!
//! [`SfuHandle::publish_source`] makes a source the publisher of a room on the room's home
//! worker and returns a [`RoomSource`]: the sending end for its RTP packets, one batch per
//! frame, and the [`KeyframeSignal`] the room raises when a viewer needs a keyframe. Dropping
//! the `RoomSource` ends it, like a WHIP publisher leaving: the stream's reconnect grace
//! starts.

use std::time::Instant;

use sfu_core::{Command, KeyframeSignal, RoomId, SessionId, SfuError, SourcePacket, WorkerId};

use crate::SfuHandle;

/// A room's in-process publisher.
pub struct RoomSource {
    id: SessionId,
    room: RoomId,
    worker: WorkerId,
    keyframes: KeyframeSignal,
    handle: SfuHandle,
}

impl RoomSource {
    pub(crate) fn start(
        handle: &SfuHandle,
        id: SessionId,
        room: RoomId,
        worker: WorkerId,
    ) -> Result<RoomSource, SfuError> {
        let keyframes = KeyframeSignal::default();
        handle.send(
            worker,
            Command::AddSource {
                id,
                room: room.clone(),
                keyframes: keyframes.clone(),
            },
        )?;
        Ok(RoomSource {
            id,
            room,
            worker,
            keyframes,
            handle: handle.clone(),
        })
    }

    /// Its id: the session id the control plane sees in the SFU's events.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Its room.
    pub fn room(&self) -> &str {
        self.room.as_str()
    }

    /// Hand one frame's packets to the room. `Err` when the worker's queue is full (the
    /// frame is lost; the caller may count it) or the worker is gone.
    pub fn send(&self, received: Instant, packets: Vec<SourcePacket>) -> Result<(), SfuError> {
        self.handle.send(
            self.worker,
            Command::SourceMedia {
                id: self.id,
                received,
                packets,
            },
        )
    }

    /// Whether the room asked for a keyframe since the last call.
    pub fn keyframe_wanted(&self) -> bool {
        self.keyframes.take()
    }

    /// Whether the SFU still has this source as a publisher (a newer publisher of the room, or
    /// the control plane closing it, ends it).
    pub fn is_live(&self) -> bool {
        self.handle.exists(self.id)
    }
}

impl Drop for RoomSource {
    fn drop(&mut self) {
        // A stopped SFU has nothing to close.
        let _ = self.handle.send(self.worker, Command::Close { id: self.id });
    }
}
