//! The per-socket frame budget: how many client frames of any kind (messages, pings, `auth`,
//! moderation) one socket may send, checked before a frame is even parsed, so that a flood
//! costs the server a token check and not a room command.
//!
//! A token bucket (governor's GCRA): `per_sec` frames a second, with a burst of
//! [`BURST_SECONDS`] seconds' worth for a socket that has been quiet. A socket that keeps
//! sending over budget is warned once per run of refusals and closed after more than
//! [`FLOOD_STRIKES`] refusals in a row.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Client frames a second one socket may send by default.
pub const FRAMES_PER_SEC: u32 = 10;
/// A quiet socket may send this many seconds' worth of frames at once.
pub const BURST_SECONDS: u32 = 2;
/// Refusals in a row after which a socket is closed as a flood (a client that ignores the
/// warning and keeps sending at full speed).
pub const FLOOD_STRIKES: u32 = 200;

/// What to do with a client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// Within budget: handle it.
    Allowed,
    /// The first refusal of a run: drop it and tell the client once (not once per frame, so
    /// that a flood does not turn into an echo of errors).
    Warn,
    /// A later refusal of the same run: drop it silently.
    Drop,
    /// More than [`FLOOD_STRIKES`] refusals in a row: close the socket.
    Close,
}

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One socket's budget.
pub(crate) struct FrameBudget<C: Clock = DefaultClock> {
    bucket: Bucket<C>,
    /// Refusals since the last allowed frame.
    strikes: u32,
}

impl FrameBudget {
    /// `per_sec` frames a second (at least 1) on the monotonic clock.
    pub(crate) fn new(per_sec: u32) -> Self {
        Self::with_clock(per_sec, DefaultClock::default())
    }
}

impl<C: Clock> FrameBudget<C> {
    /// `per_sec` frames a second (at least 1) on `clock`.
    pub(crate) fn with_clock(per_sec: u32, clock: C) -> Self {
        let rate = NonZeroU32::new(per_sec.max(1)).expect("at least 1");
        let burst = rate.saturating_mul(NonZeroU32::new(BURST_SECONDS).expect("a constant above 0"));
        let quota = Quota::per_second(rate).allow_burst(burst);
        FrameBudget {
            bucket: RateLimiter::direct_with_clock(quota, clock),
            strikes: 0,
        }
    }

    /// Spend one frame's worth.
    pub(crate) fn spend(&mut self) -> Spend {
        if self.bucket.check().is_ok() {
            self.strikes = 0;
            return Spend::Allowed;
        }
        self.strikes = self.strikes.saturating_add(1);
        match self.strikes {
            1 => Spend::Warn,
            n if n > FLOOD_STRIKES => Spend::Close,
            _ => Spend::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_burst_of_two_seconds_then_the_rate() {
        let clock = FakeRelativeClock::default();
        let mut budget = FrameBudget::with_clock(10, clock.clone());
        for _ in 0..20 {
            assert_eq!(budget.spend(), Spend::Allowed);
        }
        assert_eq!(budget.spend(), Spend::Warn);
        assert_eq!(budget.spend(), Spend::Drop);
        // One frame per 100 ms comes back.
        clock.advance(Duration::from_millis(100));
        assert_eq!(budget.spend(), Spend::Allowed);
        assert_eq!(budget.spend(), Spend::Warn, "a new run of refusals warns again");
        // A quiet socket refills to the burst and no further.
        clock.advance(Duration::from_secs(60));
        let allowed = std::iter::repeat_with(|| budget.spend())
            .take(100)
            .filter(|s| *s == Spend::Allowed)
            .count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn closes_after_a_long_run_of_refusals() {
        let clock = FakeRelativeClock::default();
        let mut budget = FrameBudget::with_clock(1, clock.clone());
        assert_eq!(budget.spend(), Spend::Allowed);
        assert_eq!(budget.spend(), Spend::Allowed);
        let strikes = FLOOD_STRIKES as usize;
        let refusals: Vec<Spend> = (0..=strikes).map(|_| budget.spend()).collect();
        assert_eq!(refusals[0], Spend::Warn);
        assert!(refusals[1..strikes].iter().all(|s| *s == Spend::Drop));
        assert_eq!(refusals[strikes], Spend::Close);
    }

    #[test]
    fn zero_means_one_per_second() {
        let clock = FakeRelativeClock::default();
        let mut budget = FrameBudget::with_clock(0, clock.clone());
        assert_eq!(budget.spend(), Spend::Allowed);
        assert_eq!(budget.spend(), Spend::Allowed);
        assert_eq!(budget.spend(), Spend::Warn);
        clock.advance(Duration::from_secs(1));
        assert_eq!(budget.spend(), Spend::Allowed);
    }
}
