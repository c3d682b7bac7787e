//! Which session a datagram belongs to.

use std::time::Instant;

use str0m::net::{Protocol, Receive};
use tracing::debug;

use super::Worker;
use super::input::Datagram;

impl Worker {
    pub(super) fn datagram(&mut self, now: Instant, d: Datagram<'_>) {
        let Ok(contents) = d.data.try_into() else {
            return;
        };
        let input = str0m::Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents,
            },
        );
        let id = match self.by_addr.get(&d.source) {
            Some(id) => Some(*id),
            None => self
                .sessions
                .values()
                .find(|s| s.rtc.accepts(&input))
                .map(|s| s.id),
        };
        let Some(id) = id else {
            debug!("datagram from an unknown peer");
            return;
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.addrs.contains(&d.source) {
            s.addrs.push(d.source);
            self.by_addr.insert(d.source, id);
        }
        if let Err(e) = s.rtc.handle_input(input) {
            debug!(session = %id, "input rejected: {e}");
        }
        self.dirty.push((id, false));
    }
}
