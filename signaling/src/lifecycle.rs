//! A stream's lifecycle as a pure state machine (time is passed in).
//!
//! ```text
//! created --publisher connected--> live --publisher gone--> live (reconnecting)
//!                                   ^                            |          |
//!                                   +---- same key within grace -+   grace over
//!                                                                           v
//!                                                                         ended
//! ```

use std::time::{Duration, Instant};

use sfu::SessionId;

/// What the API reports as `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never went live (or not since a restart ended it).
    Created,
    /// A publisher is connected, or reconnecting within the grace period.
    Live,
    /// The publisher left and did not come back in time.
    Ended,
}

impl Status {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Live => "live",
            Status::Ended => "ended",
        }
    }

    /// Read back what [`Status::as_str`] wrote.
    pub fn parse(s: &str) -> Status {
        match s {
            "live" => Status::Live,
            "ended" => Status::Ended,
            _ => Status::Created,
        }
    }
}

/// The publisher side of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publisher {
    None,
    /// WHIP accepted, ICE/DTLS not up yet.
    Connecting(SessionId),
    Connected(SessionId),
    /// Gone; the stream stays live until the deadline.
    Grace(Instant),
    /// A source outside the SFU feeds the stream (the built-in test pattern).
    External,
}

/// Lifecycle of one stream.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    status: Status,
    publisher: Publisher,
    grace: Duration,
}

impl Lifecycle {
    /// A stream in `status` with no publisher.
    pub fn new(status: Status, grace: Duration) -> Self {
        Lifecycle {
            status,
            publisher: Publisher::None,
            grace,
        }
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether the publisher is away and expected back.
    pub fn reconnecting(&self) -> bool {
        matches!(self.publisher, Publisher::Grace(_))
    }

    /// The current publisher session.
    pub fn publisher(&self) -> Option<SessionId> {
        match self.publisher {
            Publisher::Connecting(s) | Publisher::Connected(s) => Some(s),
            _ => None,
        }
    }

    /// A WHIP offer was accepted for this stream (the SFU replaces any older publisher).
    pub fn publish_started(&mut self, session: SessionId) {
        self.publisher = Publisher::Connecting(session);
    }

    /// The SFU says a publisher connected. Returns the new status if it changed.
    pub fn publisher_connected(&mut self, session: SessionId) -> Option<Status> {
        if self.publisher != Publisher::Connecting(session) {
            return None;
        }
        self.publisher = Publisher::Connected(session);
        self.set(Status::Live)
    }

    /// A source outside the SFU started feeding the stream: it is live until it ends, is
    /// stopped, or the server shuts down. Returns the new status if it changed.
    pub fn source_started(&mut self) -> Option<Status> {
        self.publisher = Publisher::External;
        self.set(Status::Live)
    }

    /// The SFU says a publisher session closed. Returns the grace deadline when the
    /// stream now waits for its publisher.
    pub fn publisher_closed(&mut self, session: SessionId, now: Instant) -> Option<Instant> {
        match self.publisher {
            Publisher::Connected(s) if s == session => {
                let deadline = now + self.grace;
                self.publisher = Publisher::Grace(deadline);
                Some(deadline)
            }
            Publisher::Connecting(s) if s == session => {
                // Never connected: nothing to wait for, nothing changes for viewers.
                self.publisher = Publisher::None;
                if self.status == Status::Live {
                    self.status = Status::Ended;
                }
                None
            }
            _ => None,
        }
    }

    /// The stream is stopped by its owner ([`Lifecycle::end`], for a live stream): returns the
    /// publisher session to close, if one is connecting or connected.
    pub fn stop(&mut self) -> Option<SessionId> {
        let publisher = self.publisher();
        self.end();
        publisher
    }

    /// Time passed. Returns the new status if the grace ran out.
    pub fn poll(&mut self, now: Instant) -> Option<Status> {
        match self.publisher {
            Publisher::Grace(deadline) if now >= deadline => {
                self.publisher = Publisher::None;
                self.set(Status::Ended)
            }
            _ => None,
        }
    }

    /// The server is shutting down: a live stream ends now, whoever is publishing. Returns
    /// the new status if it changed; the publisher's session closing later changes nothing.
    pub fn end(&mut self) -> Option<Status> {
        self.publisher = Publisher::None;
        if self.status == Status::Live {
            self.set(Status::Ended)
        } else {
            None
        }
    }

    fn set(&mut self, status: Status) -> Option<Status> {
        (self.status != status).then(|| {
            self.status = status;
            status
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[test]
    fn an_external_source_is_live_until_the_shutdown() {
        let mut l = Lifecycle::new(Status::Ended, GRACE);
        assert_eq!(l.source_started(), Some(Status::Live));
        assert_eq!(l.source_started(), None, "already live");
        assert_eq!((l.publisher(), l.reconnecting()), (None, false));
        assert_eq!(l.poll(Instant::now() + GRACE * 2), None, "no grace runs out");
        assert_eq!(l.end(), Some(Status::Ended));
    }

    #[test]
    fn reconnect_within_grace_stays_live() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Status::Created, GRACE);
        l.publish_started(SessionId(1));
        assert_eq!(l.status(), Status::Created);
        assert_eq!(l.publisher_connected(SessionId(1)), Some(Status::Live));
        let deadline = l.publisher_closed(SessionId(1), t0).expect("grace starts");
        assert!(l.reconnecting());
        assert_eq!(l.poll(t0 + Duration::from_secs(2)), None);
        l.publish_started(SessionId(2));
        assert_eq!(l.publisher_connected(SessionId(2)), None, "still live, no change");
        assert_eq!(l.poll(deadline), None, "the new publisher cancelled the grace");
        assert_eq!(l.status(), Status::Live);
    }

    #[test]
    fn grace_runs_out() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Status::Created, GRACE);
        l.publish_started(SessionId(1));
        l.publisher_connected(SessionId(1));
        l.publisher_closed(SessionId(1), t0);
        assert_eq!(l.poll(t0 + GRACE), Some(Status::Ended));
        assert_eq!(l.poll(t0 + GRACE * 2), None);
    }

    #[test]
    fn stop_ends_at_once_and_the_closing_publisher_starts_no_grace() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Status::Created, GRACE);
        l.publish_started(SessionId(1));
        l.publisher_connected(SessionId(1));
        assert_eq!(l.stop(), Some(SessionId(1)));
        assert_eq!(l.status(), Status::Ended);
        assert_eq!(l.publisher_closed(SessionId(1), t0), None);
        assert!(!l.reconnecting());
        // The same key may go live again later.
        l.publish_started(SessionId(2));
        assert_eq!(l.publisher_connected(SessionId(2)), Some(Status::Live));
    }

    #[test]
    fn shutdown_ends_live_and_reconnecting_streams_once() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Status::Created, GRACE);
        l.publish_started(SessionId(1));
        l.publisher_connected(SessionId(1));
        assert_eq!(l.end(), Some(Status::Ended));
        assert_eq!(l.end(), None);
        assert_eq!(
            l.publisher_closed(SessionId(1), t0),
            None,
            "no grace after the shutdown"
        );
        assert_eq!(l.status(), Status::Ended);

        let mut away = Lifecycle::new(Status::Created, GRACE);
        away.publish_started(SessionId(2));
        away.publisher_connected(SessionId(2));
        away.publisher_closed(SessionId(2), t0);
        assert_eq!(away.end(), Some(Status::Ended));
        assert_eq!(
            away.poll(t0 + GRACE),
            None,
            "the grace timer finds nothing to end"
        );

        let mut never = Lifecycle::new(Status::Created, GRACE);
        never.publish_started(SessionId(3));
        assert_eq!(never.end(), None, "a stream that never went live stays created");
        assert_eq!(never.status(), Status::Created);
    }

    #[test]
    fn replaced_publisher_closing_changes_nothing() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(Status::Created, GRACE);
        l.publish_started(SessionId(1));
        l.publisher_connected(SessionId(1));
        l.publish_started(SessionId(2));
        assert_eq!(l.publisher_closed(SessionId(1), t0), None);
        assert_eq!(l.publisher_connected(SessionId(2)), None);
        assert_eq!(l.status(), Status::Live);
        assert!(!l.reconnecting());
    }
}
