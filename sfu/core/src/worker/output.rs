//! What a worker asks its driver to do, and what it tells the control plane.

use std::time::Instant;

use str0m::format::Codec;

use super::input::PeerMessage;
use crate::ids::{RoomId, SessionId, WorkerId};
use crate::session::SessionKind;

/// A datagram to send.
pub type Transmit = str0m::net::Transmit;

/// What the control plane hears about sessions.
#[derive(Debug, Clone)]
pub enum SfuEvent {
    /// ICE and DTLS are up.
    Connected {
        /// Session.
        session: SessionId,
        /// Room.
        room: RoomId,
        /// Kind.
        kind: SessionKind,
    },
    /// A publisher session's first video packet: what its viewers will get.
    PublisherVideo {
        /// Session.
        session: SessionId,
        /// Room.
        room: RoomId,
        /// The video codec.
        codec: Codec,
        /// Whether it sends several simulcast layers.
        simulcast: bool,
    },
    /// The session is gone (closed, replaced, timed out).
    Closed {
        /// Session.
        session: SessionId,
        /// Room.
        room: RoomId,
        /// Kind.
        kind: SessionKind,
    },
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Hand a message to another worker.
    Peer(WorkerId, PeerMessage),
    /// Tell the control plane.
    Event(SfuEvent),
    /// Nothing more until this time or the next input.
    Timeout(Instant),
}
