//! The per-user message limit: a sliding window, pure (the caller passes the time in).
//!
//! A window remembers the times of the last `max` accepted events; an event is allowed when
//! fewer than `max` fall within the last `window_ms`. A sliding window, not a fixed one, so
//! that no burst of `2 × max` fits across a window boundary. [`LUA`] is the same rule for
//! Redis (a sorted set per user), which the Redis ledger runs so that every node shares one
//! window per user; `chat/tests/rate_window_redis.rs` checks that the two agree.

use std::collections::VecDeque;
use std::time::Duration;

/// The window in Lua: `window_wait(key, now, max, window)` (0, or the ms to wait) and
/// `window_record(key, now, member, window)`, to be prepended to a script that calls them.
pub(crate) const LUA: &str = include_str!("window.lua");

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
        // Before the first whole window nothing has expired (as in Redis, where the horizon
        // is simply negative).
        if let Some(horizon) = now_ms.checked_sub(limit.window_ms()) {
            while self.hits.front().is_some_and(|&t| t <= horizon) {
                self.hits.pop_front();
            }
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

    #[test]
    fn nothing_expires_before_the_first_whole_window() {
        let limit = RateLimit::default();
        let mut w = SlidingWindow::default();
        assert!(w.try_acquire(limit, 0).is_ok());
        assert!(w.try_acquire(limit, 10).is_ok());
        // Both events are within the last second at 500 ms.
        assert_eq!(w.try_acquire(limit, 500), Err(500));
        assert!(w.try_acquire(limit, 1000).is_ok());
    }
}
