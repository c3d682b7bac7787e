//! A worker's record of one session: its str0m state machine and its role in the room.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Rtc;
use tracing::info;

use crate::ids::{RoomId, SessionId};
use crate::publisher::Publisher;
use crate::session::SessionKind;
use crate::subscriber::Subscriber;

/// Where a session is in its life: waiting for ICE and DTLS, or carrying media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionState {
    Connecting,
    Connected,
}

/// What the session does in its room, with the state that role needs.
#[derive(Debug)]
pub(super) enum Role {
    Publisher(Publisher),
    Subscriber(Box<Subscriber>),
}

/// One session as the worker holds it.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: SessionId,
    pub(super) room: RoomId,
    pub(super) kind: SessionKind,
    pub(super) rtc: Rtc,
    pub(super) state: SessionState,
    pub(super) role: Role,
    /// str0m's next timeout (set through `Timers::set`).
    pub(super) timeout: Instant,
    /// This session's live entry in the worker's timer heap.
    pub(super) timer_at: Option<Instant>,
    pub(super) addrs: Vec<SocketAddr>,
    /// Listed in `Worker::deferred`.
    pub(super) pending_drain: bool,
    /// Remote candidates trickled so far (capped at [`MAX_REMOTE_CANDIDATES`]).
    pub(super) remote_candidates: usize,
}

/// Most remote candidates one session may trickle: a browser gathers a handful per network
/// interface; each candidate costs str0m a candidate pair to check against every local one.
pub(crate) const MAX_REMOTE_CANDIDATES: usize = 64;

impl super::Worker {
    /// Close every session still not connected at its deadline (its client never finished
    /// ICE and DTLS). Each goes the way of any closed session: a `Closed` event, and the
    /// control plane forgets its resource.
    pub(super) fn reap_unconnected(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.connect_deadlines.front() {
            if deadline > now {
                break;
            }
            self.connect_deadlines.pop_front();
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if s.state == SessionState::Connecting {
                info!(session = %id, room = %s.room, kind = ?s.kind, "not connected in time: closed");
                s.rtc.disconnect();
                self.stats.sessions_reaped += 1;
                self.dirty.push((id, false));
            }
        }
    }
}

/// List a viewer that had media written for draining at the next output, once.
pub(super) fn defer_drain(deferred: &mut Vec<SessionId>, s: &mut Session) {
    if !s.pending_drain {
        s.pending_drain = true;
        deferred.push(s.id);
    }
}
