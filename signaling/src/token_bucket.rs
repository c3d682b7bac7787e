//! A token bucket in plain arithmetic, time passed in.

use std::time::{Duration, Instant};

/// Sustained rate and burst of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens the bucket holds (requests a quiet client may send at once).
    pub burst: u32,
}

/// One client's bucket. Starts full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub(crate) fn full(limit: &RateLimit, now: Instant) -> Self {
        TokenBucket {
            tokens: capacity(limit),
            updated: now,
        }
    }

    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(capacity(limit));
        self.updated = now;
    }

    /// Take one token, or say how long until one is there.
    pub(crate) fn take(&mut self, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / limit.per_second))
        }
    }

    /// Full again: forgetting the bucket changes nothing for its client.
    pub(crate) fn is_full(&self, limit: &RateLimit, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * limit.per_second >= capacity(limit)
    }
}

fn capacity(limit: &RateLimit) -> f64 {
    f64::from(limit.burst.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 20.0,
        burst: 40,
    };

    #[test]
    fn burst_then_refuse() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(&LIMIT, t0);
        for i in 0..40 {
            assert_eq!(b.take(&LIMIT, t0), Ok(()), "request {i} is within the burst");
        }
        let wait = b.take(&LIMIT, t0).expect_err("the 41st is refused");
        let ms = wait.as_secs_f64() * 1000.0;
        assert!(
            (49.9..=50.1).contains(&ms),
            "one token every 1/20 s, not {wait:?}"
        );
    }

    #[test]
    fn refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(&LIMIT, t0);
        for _ in 0..40 {
            b.take(&LIMIT, t0).expect("burst");
        }
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(&LIMIT, t1), Ok(()));
        assert_eq!(b.take(&LIMIT, t1), Ok(()));
        assert!(b.take(&LIMIT, t1).is_err(), "two tokens in 100 ms at 20/s");
        // Sustained: a client just under the rate is never refused.
        for i in 1..100 {
            assert_eq!(b.take(&LIMIT, t1 + Duration::from_millis(51 * i)), Ok(()));
        }
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(&LIMIT, t0);
        let later = t0 + Duration::from_secs(3600);
        assert!(b.is_full(&LIMIT, later));
        for _ in 0..40 {
            b.take(&LIMIT, later).expect("burst");
        }
        assert!(
            b.take(&LIMIT, later).is_err(),
            "an hour idle still buys only the burst"
        );
        assert!(!b.is_full(&LIMIT, later));
        assert!(b.is_full(&LIMIT, later + Duration::from_secs(2)));
    }
}
