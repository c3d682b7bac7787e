//! When sessions are due: a min-heap of their str0m timeouts, so neither finding the due
//! sessions nor the next wake-up walks every session (with hundreds of viewers, the driver
//! asks for the next wake-up after every send batch).
//!
//! Each session has at most one live entry, `Session::timer_at`. A timeout earlier than the
//! live entry pushes a new one (the old one goes stale and is skipped when it surfaces); a
//! later one waits for the live entry to come due, which then re-files the session at its
//! current timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::SessionMap;
use super::session::Session;
use crate::ids::SessionId;

#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, SessionId)>>,
}

impl Timers {
    /// The session's str0m timeout is now `t`.
    pub(super) fn set(&mut self, s: &mut Session, t: Instant) {
        s.timeout = t;
        if s.timer_at.is_none_or(|at| t < at) {
            s.timer_at = Some(t);
            self.heap.push(Reverse((t, s.id)));
        }
    }

    /// Hand every session due at `now` to `due`.
    pub(super) fn take_due(
        &mut self,
        now: Instant,
        sessions: &mut SessionMap,
        mut due: impl FnMut(SessionId),
    ) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(s) = sessions.get_mut(&id) else {
                continue;
            };
            if s.timer_at != Some(at) {
                continue;
            }
            s.timer_at = None;
            if s.timeout <= now {
                due(id);
            } else {
                let t = s.timeout;
                self.set(s, t);
            }
        }
    }

    /// The earliest live entry.
    pub(super) fn next(&mut self, sessions: &SessionMap) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if sessions.get(&id).is_some_and(|s| s.timer_at == Some(at)) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}
