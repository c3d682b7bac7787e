//! Sliding-window rate limiting, pure: the caller passes the time in.
//!
//! A window remembers the times of the last `max` accepted events; an event is allowed when
//! fewer than `max` fall within the last `window_ms`. The Redis ledger implements the same rule
//! with a sorted set so that every node shares one window per user.

use std::collections::VecDeque;
use std::time::Duration;

/// At most `messages` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed in one window.
    pub messages: u32,
    /// Window length.
    pub window: Duration,
}

impl Default for RateLimit {
    /// 2 messages per second.
    fn default() -> Self {
        RateLimit {
            messages: 2,
            window: Duration::from_secs(1),
        }
    }
}

impl RateLimit {
    /// Window length in ms (at least 1).
    pub fn window_ms(&self) -> u64 {
        (self.window.as_millis() as u64).max(1)
    }
}

/// One user's window.
#[derive(Debug, Clone, Default)]
pub struct SlidingWindow {
    hits: VecDeque<u64>,
}

impl SlidingWindow {
    /// Record an event at `now_ms` if the limit allows it; otherwise return the ms to wait.
    pub fn try_acquire(&mut self, limit: RateLimit, now_ms: u64) -> Result<(), u64> {
        self.expire(limit, now_ms);
        if self.hits.len() >= limit.messages as usize {
            let oldest = self.hits.front().copied().unwrap_or(now_ms);
            return Err((oldest + limit.window_ms()).saturating_sub(now_ms).max(1));
        }
        self.hits.push_back(now_ms);
        Ok(())
    }

    /// Forget events older than the window; true when nothing is left (the entry may be dropped).
    pub fn expire(&mut self, limit: RateLimit, now_ms: u64) -> bool {
        let horizon = now_ms.saturating_sub(limit.window_ms());
        while self.hits.front().is_some_and(|&t| t <= horizon) {
            self.hits.pop_front();
        }
        self.hits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_per_second() {
        let limit = RateLimit::default();
        let mut w = SlidingWindow::default();
        assert!(w.try_acquire(limit, 1000).is_ok());
        assert!(w.try_acquire(limit, 1400).is_ok());
        assert_eq!(w.try_acquire(limit, 1500), Err(500));
        assert_eq!(w.try_acquire(limit, 1999), Err(1));
        assert!(w.try_acquire(limit, 2000).is_ok());
        assert_eq!(w.try_acquire(limit, 2000), Err(400));
        assert!(w.try_acquire(limit, 2400).is_ok());
    }

    #[test]
    fn sliding_not_fixed() {
        // A fixed window would allow 4 messages across the boundary at 999/1000.
        let limit = RateLimit::default();
        let mut w = SlidingWindow::default();
        let accepted = [990u64, 995, 1000, 1005]
            .iter()
            .filter(|&&t| w.try_acquire(limit, t).is_ok())
            .count();
        assert_eq!(accepted, 2);
        assert!(!w.expire(limit, 1500));
        assert!(w.expire(limit, 1995));
    }
}
