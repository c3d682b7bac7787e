//! The control plane's book of sessions: which worker owns each, and the limits on creating
//! them.
//!
//! Two limits keep offers that never connect from filling memory (each holds a str0m state
//! machine until its worker closes it at `SfuConfig::connect_timeout`):
//! - **per server**: at most `max_sessions` sessions in all ([`SfuError::ServerFull`]);
//! - **per client address**: at most `max_connecting_per_client` sessions that have not
//!   connected yet ([`SfuError::TooManyConnecting`]). Connected sessions do not count: a
//!   school or a carrier NAT puts hundreds of real viewers behind one address, while what an
//!   attacker without a WebRTC stack can make cheaply is sessions that never connect.
//!
//! The book hears every session event in order (not through the lossy broadcast), so its
//! counts cannot drift.

use std::collections::HashMap;
use std::net::IpAddr;

use sfu_core::{RoomId, SessionId, SfuError, WorkerId};

/// Limits on creating sessions (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions on this server, connected or not.
    pub max_sessions: usize,
    /// Sessions not connected yet, per client address.
    pub max_connecting_per_client: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_sessions: 5_000,
            max_connecting_per_client: 32,
        }
    }
}

#[derive(Debug)]
struct Entry {
    worker: WorkerId,
    room: RoomId,
    /// The client's address while the session has not connected.
    connecting: Option<IpAddr>,
}

#[derive(Debug, Default)]
pub(crate) struct SessionBook {
    limits: SessionLimits,
    sessions: HashMap<SessionId, Entry>,
    connecting: HashMap<IpAddr, usize>,
}

impl SessionBook {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        SessionBook {
            limits,
            ..SessionBook::default()
        }
    }

    /// Whether one more session from `client` is within the limits.
    pub(crate) fn admit(&self, client: Option<IpAddr>) -> Result<(), SfuError> {
        let l = self.limits;
        if l.max_sessions > 0 && self.sessions.len() >= l.max_sessions {
            return Err(SfuError::ServerFull(l.max_sessions));
        }
        if let Some(c) = client
            && l.max_connecting_per_client > 0
            && self.connecting.get(&c).copied().unwrap_or(0) >= l.max_connecting_per_client
        {
            return Err(SfuError::TooManyConnecting(l.max_connecting_per_client));
        }
        Ok(())
    }

    /// A new session, not connected yet (checked with [`SessionBook::admit`] under the same
    /// lock).
    pub(crate) fn insert(&mut self, id: SessionId, worker: WorkerId, room: RoomId, client: Option<IpAddr>) {
        if let Some(c) = client {
            *self.connecting.entry(c).or_default() += 1;
        }
        self.sessions.insert(
            id,
            Entry {
                worker,
                room,
                connecting: client,
            },
        );
    }

    /// The session connected: it no longer counts against its client.
    pub(crate) fn connected(&mut self, id: SessionId) {
        if let Some(c) = self.sessions.get_mut(&id).and_then(|e| e.connecting.take()) {
            self.uncount(c);
        }
    }

    /// The session is gone: its worker, if it was known.
    pub(crate) fn remove(&mut self, id: SessionId) -> Option<WorkerId> {
        let e = self.sessions.remove(&id)?;
        if let Some(c) = e.connecting {
            self.uncount(c);
        }
        Some(e.worker)
    }

    fn uncount(&mut self, client: IpAddr) {
        if let Some(n) = self.connecting.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.connecting.remove(&client);
            }
        }
    }

    pub(crate) fn worker_of(&self, id: SessionId) -> Option<WorkerId> {
        self.sessions.get(&id).map(|e| e.worker)
    }

    /// The workers with a session in `room`, each once, in order.
    pub(crate) fn workers_in(&self, room: &RoomId) -> Vec<WorkerId> {
        let mut workers: Vec<WorkerId> = self
            .sessions
            .values()
            .filter(|e| e.room == *room)
            .map(|e| e.worker)
            .collect();
        workers.sort_unstable_by_key(|w| w.0);
        workers.dedup();
        workers
    }

    /// Sessions not connected yet, over every client.
    pub(crate) fn connecting(&self) -> usize {
        self.connecting.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn book(max_sessions: usize, max_connecting_per_client: usize) -> SessionBook {
        SessionBook::new(SessionLimits {
            max_sessions,
            max_connecting_per_client,
        })
    }

    fn add(b: &mut SessionBook, id: u64, client: Option<IpAddr>) -> Result<(), SfuError> {
        b.admit(client)?;
        b.insert(SessionId(id), WorkerId(0), RoomId::new("r"), client);
        Ok(())
    }

    #[test]
    fn a_client_may_have_so_many_sessions_connecting_and_any_number_connected() {
        let mut b = book(0, 2);
        add(&mut b, 1, ip(1)).expect("first");
        add(&mut b, 2, ip(1)).expect("second");
        assert!(matches!(
            add(&mut b, 3, ip(1)),
            Err(SfuError::TooManyConnecting(2))
        ));
        add(&mut b, 4, ip(2)).expect("another client is not affected");
        // One connects: room for one more, and connected sessions never count again.
        b.connected(SessionId(1));
        b.connected(SessionId(1));
        add(&mut b, 5, ip(1)).expect("after one connected");
        assert!(add(&mut b, 6, ip(1)).is_err());
        // One that never connected is closed: its place is free.
        assert_eq!(b.remove(SessionId(2)), Some(WorkerId(0)));
        add(&mut b, 7, ip(1)).expect("after one was closed");
        // Closing a connected one frees nothing more.
        b.remove(SessionId(1));
        assert!(add(&mut b, 8, ip(1)).is_err());
        assert_eq!(b.connecting(), 3);
    }

    #[test]
    fn the_server_takes_so_many_sessions_in_all() {
        let mut b = book(3, 0);
        for id in 0..3 {
            add(&mut b, id, ip(id as u8)).expect("under the cap");
        }
        b.connected(SessionId(0));
        assert!(matches!(add(&mut b, 9, ip(9)), Err(SfuError::ServerFull(3))));
        b.remove(SessionId(0));
        add(&mut b, 9, ip(9)).expect("after one left");
    }

    #[test]
    fn sessions_without_a_client_address_count_only_against_the_server() {
        let mut b = book(0, 1);
        for id in 0..10 {
            add(&mut b, id, None).expect("no address, no per-client limit");
        }
        assert_eq!(b.connecting(), 0);
        assert_eq!(b.remove(SessionId(42)), None);
    }
}
