//! What a worker is given: datagrams, control-plane commands, messages from other workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::media::Rid;
use str0m::{IceCreds, Rtc};

use super::allocation::LayerState;
use crate::allocator::LayerChoice;
use crate::error::SfuError;
use crate::ice_fragment::IceFragment;
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::ingest_health::HealthReport;
use crate::packet::MediaPacket;
use crate::session::SessionKind;
use crate::source::{KeyframeSignal, SourcePacket};
use crate::tap::{TapId, TapQueue};

/// A UDP datagram that arrived on one of the worker's sockets.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// Sender.
    pub source: SocketAddr,
    /// The local socket address it arrived on.
    pub destination: SocketAddr,
    /// Payload.
    pub data: &'a [u8],
    /// When the kernel received it (a driver that cannot tell passes the time it read it).
    /// Media waits in the socket's buffer while the worker is busy or not scheduled; the age
    /// of what is forwarded counts from here.
    pub arrived: Instant,
}

/// Everything a worker reacts to. Each input carries the current time.
#[derive(Debug)]
pub enum Input<'a> {
    /// Network input.
    Datagram(Instant, Datagram<'a>),
    /// A request from the control plane.
    Command(Instant, Command),
    /// A message from another worker.
    Peer(Instant, PeerMessage),
    /// Time passed.
    Timeout(Instant),
}

/// Reply callback; the driver decides how it crosses back (a oneshot channel, usually).
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Requests from the control plane.
pub enum Command {
    /// Adopt a session built by [`crate::build_session`].
    AddSession {
        /// Its id.
        id: SessionId,
        /// Its room.
        room: RoomId,
        /// Publisher or subscriber.
        kind: SessionKind,
        /// The WebRTC state machine.
        rtc: Box<Rtc>,
    },
    /// Make an in-process source the publisher of a room (to its home worker).
    AddSource {
        /// Its id (from the same space as sessions).
        id: SessionId,
        /// Its room.
        room: RoomId,
        /// Raised when the room needs a keyframe.
        keyframes: KeyframeSignal,
    },
    /// A source's packets (one frame, usually).
    SourceMedia {
        /// Which source.
        id: SessionId,
        /// When the server received the frame they carry.
        received: Instant,
        /// The packets, in order.
        packets: Vec<SourcePacket>,
    },
    /// End a session or a source (WHIP/WHEP DELETE, a source's connection gone).
    Close {
        /// Which.
        id: SessionId,
    },
    /// Pin a viewer's layer or return it to automatic.
    SetLayer {
        /// Which viewer.
        id: SessionId,
        /// The choice.
        choice: LayerChoice,
        /// Whether the session exists.
        reply: Reply<bool>,
    },
    /// Read a viewer's layer state.
    QueryLayer {
        /// Which viewer.
        id: SessionId,
        /// The answer, `None` when the session is unknown.
        reply: Reply<Option<LayerState>>,
    },
    /// How a room's publisher media arrives (to the room's home worker).
    QueryHealth {
        /// Which room.
        room: RoomId,
        /// The answer, `None` when the room has no publisher here.
        reply: Reply<Option<HealthReport>>,
    },
    /// Tap a room (to its home worker): its audio and top video layer into `queue`.
    AddTap {
        /// The tap's id.
        id: TapId,
        /// Which room.
        room: RoomId,
        /// Where its packets go.
        queue: Box<dyn TapQueue>,
    },
    /// Stop a tap.
    RemoveTap {
        /// Which tap.
        id: TapId,
        /// Its room.
        room: RoomId,
    },
    /// A tap's consumer needs a keyframe (it restarted): asked of the publisher through the
    /// room's throttle.
    TapKeyframe {
        /// Which tap.
        id: TapId,
        /// Its room.
        room: RoomId,
    },
    /// Trickle ICE or ICE restart (WHIP/WHEP PATCH).
    Trickle {
        /// Which session.
        id: SessionId,
        /// The parsed fragment.
        fragment: IceFragment,
        /// New local credentials when the fragment restarted ICE.
        reply: Reply<Result<Option<IceCreds>, SfuError>>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::AddSession { id, room, kind, .. } => write!(f, "AddSession({id}, {room}, {kind:?})"),
            Command::Close { id } => write!(f, "Close({id})"),
            Command::AddSource { id, room, .. } => write!(f, "AddSource({id}, {room})"),
            Command::SourceMedia { id, packets, .. } => {
                write!(f, "SourceMedia({id}, {} packets)", packets.len())
            }
            Command::SetLayer { id, choice, .. } => write!(f, "SetLayer({id}, {choice:?})"),
            Command::QueryLayer { id, .. } => write!(f, "QueryLayer({id})"),
            Command::QueryHealth { room, .. } => write!(f, "QueryHealth({room})"),
            Command::Trickle { id, .. } => write!(f, "Trickle({id})"),
            Command::AddTap { id, room, .. } => write!(f, "AddTap({id}, {room})"),
            Command::RemoveTap { id, room } => write!(f, "RemoveTap({id}, {room})"),
            Command::TapKeyframe { id, room } => write!(f, "TapKeyframe({id}, {room})"),
        }
    }
}

/// Messages between workers.
#[derive(Debug)]
pub enum PeerMessage {
    /// A publisher packet for the receiving worker's subscribers.
    Media(Arc<MediaPacket>),
    /// A subscriber elsewhere needs a keyframe (to the home worker).
    KeyframeRequest {
        /// Room.
        room: RoomId,
        /// Layer.
        rid: Option<Rid>,
    },
    /// A worker starts or stops wanting a room's packets (to the home worker).
    Interest {
        /// Room.
        room: RoomId,
        /// The worker.
        worker: WorkerId,
        /// Wants them or not.
        on: bool,
    },
}
