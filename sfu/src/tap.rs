//! Room taps as their consumer (the LL-HLS bridge) holds them.
//!
//! [`SfuHandle::tap`] adds a tap on the room's home worker and returns a [`RoomTap`]: the
//! receiving end of a bounded queue of [`TapPacket`]s. The worker only ever *offers* a packet
//! (it never waits): when the consumer falls behind and the queue is full, the tap drops
//! video to the next keyframe and asks the publisher for one. Dropping the `RoomTap` removes
//! the tap.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use sfu_core::{Command, RoomId, SfuError, TapId, TapPacket, TapQueue, WorkerId};

use crate::SfuHandle;

/// The worker's end of a tap's queue.
#[derive(Debug)]
struct ChannelQueue(SyncSender<TapPacket>);

impl TapQueue for ChannelQueue {
    fn offer(&self, packet: TapPacket) -> bool {
        self.0.try_send(packet).is_ok()
    }
}

/// A tap on a room: its publisher's audio and top video layer, as RTP packets.
pub struct RoomTap {
    id: TapId,
    room: RoomId,
    worker: WorkerId,
    packets: Receiver<TapPacket>,
    handle: SfuHandle,
}

impl RoomTap {
    pub(crate) fn start(
        handle: &SfuHandle,
        id: TapId,
        room: RoomId,
        worker: WorkerId,
        capacity: usize,
    ) -> Result<RoomTap, SfuError> {
        let (tx, rx) = sync_channel(capacity.max(1));
        handle.send(
            worker,
            Command::AddTap {
                id,
                room: room.clone(),
                queue: Box::new(ChannelQueue(tx)),
            },
        )?;
        Ok(RoomTap {
            id,
            room,
            worker,
            packets: rx,
            handle: handle.clone(),
        })
    }

    /// The next packet, waiting at most `timeout`. `Err(Timeout)` while the room is quiet;
    /// `Err(Disconnected)` once the SFU has dropped the tap.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<TapPacket, RecvTimeoutError> {
        self.packets.recv_timeout(timeout)
    }

    /// The next packet if one is queued.
    pub fn try_recv(&self) -> Option<TapPacket> {
        self.packets.try_recv().ok()
    }

    /// Ask the publisher for a keyframe of the tap's layer (through the room's throttle): the
    /// consumer restarted and needs a picture to start from.
    pub fn request_keyframe(&self) {
        // A stopped SFU has no publisher to ask.
        let _ = self.handle.send(
            self.worker,
            Command::TapKeyframe {
                id: self.id,
                room: self.room.clone(),
            },
        );
    }

    /// The room it taps.
    pub fn room(&self) -> &str {
        self.room.as_str()
    }

    /// Whether the room's publisher sends video, known from its first video packet: also
    /// while the tap, waiting for a keyframe to start from, has passed none on.
    pub fn room_has_video(&self) -> bool {
        self.handle.room_has_video(&self.room)
    }
}

impl std::fmt::Debug for RoomTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoomTap({}, {})", self.id, self.room)
    }
}

impl Drop for RoomTap {
    fn drop(&mut self) {
        // A stopped SFU has nothing to remove.
        let _ = self.handle.send(
            self.worker,
            Command::RemoveTap {
                id: self.id,
                room: self.room.clone(),
            },
        );
    }
}
