//! One token bucket per client, kept by `governor` (GCRA: a token bucket in one timestamp).
//!
//! Buckets that have refilled are forgotten every [`SWEEP_EVERY`], so memory follows the
//! clients active in the last few seconds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use parking_lot::Mutex;
use tracing::warn;

/// How often full buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Clients tracked at most; past this (after a sweep), requests are not limited until a sweep
/// makes room, rather than memory growing without bound.
const MAX_CLIENTS: usize = 100_000;
/// The slowest refill taken: a configured rate below one token a day is one a day.
const SLOWEST_REFILL: Duration = Duration::from_secs(24 * 3600);

/// Sustained rate and burst of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens the bucket holds (requests a quiet client may send at once).
    pub burst: u32,
}

impl RateLimit {
    fn quota(&self) -> Quota {
        let refill = Duration::try_from_secs_f64(1.0 / self.per_second)
            .unwrap_or(SLOWEST_REFILL)
            .clamp(Duration::from_nanos(1), SLOWEST_REFILL);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(refill)
            .expect("the refill period is clamped above zero")
            .allow_burst(burst)
    }
}

/// Buckets of every recent client, and whether clients are named by their proxy.
pub(crate) struct RateLimiter<C: Clock + Clone = DefaultClock> {
    buckets: Governor<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    swept: Mutex<C::Instant>,
    refused: AtomicU64,
    /// Count clients by `X-Forwarded-For` (see `rate_limit::client_ip`).
    pub(crate) trust_proxy: bool,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, trust_proxy: bool) -> RateLimiter {
        RateLimiter::with_clock(limit, trust_proxy, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    fn with_clock(limit: RateLimit, trust_proxy: bool, clock: C) -> RateLimiter<C> {
        RateLimiter {
            buckets: Governor::new(limit.quota(), DefaultKeyedStateStore::default(), clock.clone()),
            swept: Mutex::new(clock.now()),
            clock,
            refused: AtomicU64::new(0),
            trust_proxy,
        }
    }

    /// Count one request from `client`: `Err(wait)` when it is over its limit.
    pub(crate) fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        let full = self.sweep_if_due(now);
        if full {
            return Ok(());
        }
        match self.buckets.check_key(&client) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(not_until.wait_time_from(now))
            }
        }
    }

    /// Forget refilled buckets when a sweep is due. Returns whether the table is still full.
    fn sweep_if_due(&self, now: C::Instant) -> bool {
        let clients = self.buckets.len();
        let due = {
            let mut swept = self.swept.lock();
            let since: Duration = now.duration_since(*swept).into();
            let due = since >= SWEEP_EVERY || (clients >= MAX_CLIENTS && since >= Duration::from_secs(1));
            if due {
                *swept = now;
            }
            due
        };
        if !due {
            return clients >= MAX_CLIENTS;
        }
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
        let full = self.buckets.len() >= MAX_CLIENTS;
        if full && clients >= MAX_CLIENTS {
            warn!("{MAX_CLIENTS} clients over their API rate at once; requests are not limited");
        }
        full
    }

    /// Requests refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 20.0,
        burst: 40,
    };

    fn limiter() -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimiter::with_clock(LIMIT, false, clock.clone()), clock)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn burst_then_refuse() {
        let (l, _) = limiter();
        for i in 0..40 {
            assert_eq!(
                l.check(ip("192.0.2.1")),
                Ok(()),
                "request {i} is within the burst"
            );
        }
        let wait = l.check(ip("192.0.2.1")).expect_err("the 41st is refused");
        let ms = wait.as_secs_f64() * 1000.0;
        assert!(
            (49.9..=50.1).contains(&ms),
            "one token every 1/20 s, not {wait:?}"
        );
    }

    #[test]
    fn refills_at_the_rate() {
        let (l, clock) = limiter();
        let client = ip("192.0.2.1");
        for _ in 0..40 {
            l.check(client).expect("burst");
        }
        clock.advance(Duration::from_millis(100));
        assert_eq!(l.check(client), Ok(()));
        assert_eq!(l.check(client), Ok(()));
        assert!(l.check(client).is_err(), "two tokens in 100 ms at 20/s");
        // Sustained: a client just under the rate is never refused.
        for _ in 1..100 {
            clock.advance(Duration::from_millis(51));
            assert_eq!(l.check(client), Ok(()));
        }
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let (l, clock) = limiter();
        clock.advance(Duration::from_secs(3600));
        for _ in 0..40 {
            l.check(ip("192.0.2.1")).expect("burst");
        }
        assert!(
            l.check(ip("192.0.2.1")).is_err(),
            "an hour idle still buys only the burst"
        );
    }

    #[test]
    fn clients_have_separate_buckets() {
        let (l, _) = limiter();
        for _ in 0..40 {
            l.check(ip("192.0.2.1")).expect("within the burst");
        }
        assert!(l.check(ip("192.0.2.1")).is_err());
        assert_eq!(l.check(ip("192.0.2.2")), Ok(()));
        assert_eq!(l.refused(), 1);
    }

    #[test]
    fn idle_buckets_are_swept() {
        let (l, clock) = limiter();
        for i in 0..50u8 {
            l.check(IpAddr::from([198, 51, 100, i])).expect("first request");
        }
        // A busy client: its bucket takes 2 s to refill.
        clock.advance(Duration::from_secs(9));
        for _ in 0..40 {
            l.check(ip("192.0.2.1")).expect("within the burst");
        }
        assert_eq!(l.buckets.len(), 51, "no sweep before {SWEEP_EVERY:?}");
        clock.advance(SWEEP_EVERY - Duration::from_secs(9));
        l.check(ip("192.0.2.2")).expect("ok");
        assert_eq!(l.buckets.len(), 2, "refilled buckets are gone, recent ones stay");
    }

    #[test]
    fn odd_rates_still_make_a_quota() {
        for per_second in [0.0, 1e-9, f64::INFINITY, f64::NAN, 1e12] {
            let q = RateLimit { per_second, burst: 0 }.quota();
            assert!(q.replenish_interval() >= Duration::from_nanos(1));
            assert_eq!(q.burst_size().get(), 1);
        }
    }
}
