//! How long a viewer counts after it was last seen: two buckets of half the window each.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The counting window. A viewer seen at `t` counts until the end of the bucket after the
/// one holding `t`: at least half a window, at most a whole one. Viewers must be re-marked
/// more often than every half window to count without gaps.
///
/// Buckets are numbered from the Unix epoch, so nodes that share Redis agree on them as long
/// as their clocks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    bucket_secs: u64,
}

impl Default for Window {
    /// Two minutes: per-minute buckets.
    fn default() -> Self {
        Window::new(Duration::from_secs(120))
    }
}

impl Window {
    /// A window of `length`, rounded down to an even number of seconds (2 s at least).
    pub fn new(length: Duration) -> Self {
        Window {
            bucket_secs: (length.as_secs() / 2).max(1),
        }
    }

    /// The whole window: the longest a viewer counts after it was last seen.
    pub fn length(&self) -> Duration {
        Duration::from_secs(self.bucket_secs * 2)
    }

    /// One bucket: half the window.
    pub fn bucket_length(&self) -> Duration {
        Duration::from_secs(self.bucket_secs)
    }

    /// How often a viewer that is still there should be marked again: a third of a bucket,
    /// 20 s with the default window, so one late or lost mark does not drop it.
    pub fn remark_every(&self) -> Duration {
        (self.bucket_length() / 3).max(Duration::from_millis(500))
    }

    /// The bucket that `now` falls in.
    pub fn bucket(&self, now: SystemTime) -> u64 {
        now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / self.bucket_secs
    }

    /// The buckets whose union is the current count at `now`: the previous one and this one.
    pub fn live_buckets(&self, now: SystemTime) -> [u64; 2] {
        let b = self.bucket(now);
        [b.saturating_sub(1), b]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_per_minute_buckets() {
        let w = Window::default();
        assert_eq!(w.bucket_length(), Duration::from_secs(60));
        assert_eq!(w.length(), Duration::from_secs(120));
        assert_eq!(w.remark_every(), Duration::from_secs(20));
        let t = UNIX_EPOCH + Duration::from_secs(600 + 59);
        assert_eq!(w.bucket(t), 10);
        assert_eq!(w.live_buckets(t), [9, 10]);
    }

    #[test]
    fn short_windows_round_to_whole_buckets() {
        assert_eq!(
            Window::new(Duration::from_secs(4)).bucket_length(),
            Duration::from_secs(2)
        );
        assert_eq!(
            Window::new(Duration::from_secs(1)).length(),
            Duration::from_secs(2)
        );
        assert_eq!(
            Window::new(Duration::from_secs(2)).remark_every(),
            Duration::from_millis(500)
        );
    }
}
