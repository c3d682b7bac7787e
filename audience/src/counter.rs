//! The in-process viewer counter: per stream, one sketch per bucket for the current count,
//! a lifetime sketch for total views, and the peak of the current count. Sans-IO: the time
//! is passed in.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::hll::{HyperLogLog, hash};
use crate::window::Window;

/// What a stream's audience looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudienceStats {
    /// Distinct viewers seen within the window.
    pub current: u64,
    /// The largest `current` computed so far.
    pub peak: u64,
    /// Distinct viewers ever seen (total views).
    pub total: u64,
}

/// The part of a stream's audience that outlives the process: its lifetime sketch (total
/// views) and peak. Stored while the stream is watched and restored after a restart, so a
/// viewer seen before and after the restart still counts once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AudienceRecord {
    /// Distinct viewers ever seen.
    pub total: HyperLogLog,
    /// The largest current count.
    pub peak: u64,
}

#[derive(Debug, Default)]
struct StreamAudience {
    /// At most the two live buckets, oldest first.
    buckets: Vec<(u64, HyperLogLog)>,
    total: HyperLogLog,
    peak: u64,
    /// The total or the peak moved since the record was last taken.
    unsaved: bool,
}

impl StreamAudience {
    /// Drop buckets that fell out of the window.
    fn expire(&mut self, oldest_live: u64) {
        self.buckets.retain(|(b, _)| *b >= oldest_live);
    }

    fn current(&mut self) -> u64 {
        let count = match self.buckets.as_slice() {
            [] => 0,
            [(_, only)] => only.count(),
            [(_, first), rest @ ..] => {
                let mut union = first.clone();
                for (_, h) in rest {
                    union.merge(h);
                }
                union.count()
            }
        };
        if count > self.peak {
            self.peak = count;
            self.unsaved = true;
        }
        count
    }
}

/// Viewer counts of every stream of this process. Memory: at most three 16 KiB sketches per
/// stream until [`ViewerCounter::forget`].
#[derive(Debug, Default)]
pub struct ViewerCounter {
    window: Window,
    streams: HashMap<String, StreamAudience>,
}

impl ViewerCounter {
    /// A counter with no streams.
    pub fn new(window: Window) -> Self {
        ViewerCounter {
            window,
            streams: HashMap::new(),
        }
    }

    /// The window it counts over.
    pub fn window(&self) -> Window {
        self.window
    }

    /// `viewer` is watching `stream` at `now` (a first view or a heartbeat: the same call).
    pub fn seen(&mut self, stream: &str, viewer: &str, now: SystemTime) {
        let h = hash(viewer.as_bytes());
        let bucket = self.window.bucket(now);
        let audience = match self.streams.get_mut(stream) {
            Some(a) => a,
            None => self.streams.entry(stream.to_string()).or_default(),
        };
        audience.expire(bucket.saturating_sub(1));
        audience.unsaved |= audience.total.insert_hash(h);
        match audience.buckets.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, sketch)) => {
                sketch.insert_hash(h);
            }
            None => {
                let mut sketch = HyperLogLog::new();
                sketch.insert_hash(h);
                audience.buckets.push((bucket, sketch));
                audience.buckets.sort_by_key(|(b, _)| *b);
            }
        }
    }

    /// Distinct viewers of `stream` seen in the last window at `now`; raises the peak.
    pub fn current(&mut self, stream: &str, now: SystemTime) -> u64 {
        let [oldest, _] = self.window.live_buckets(now);
        self.streams.get_mut(stream).map_or(0, |a| {
            a.expire(oldest);
            a.current()
        })
    }

    /// The largest current count computed for `stream`.
    pub fn peak(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |a| a.peak)
    }

    /// Distinct viewers ever seen on `stream` (since it was last forgotten).
    pub fn total(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |a| a.total.count())
    }

    /// Current (raising the peak), peak and total in one call.
    pub fn stats(&mut self, stream: &str, now: SystemTime) -> AudienceStats {
        let current = self.current(stream, now);
        AudienceStats {
            current,
            peak: self.peak(stream),
            total: self.total(stream),
        }
    }

    /// `stream`'s record when its total or peak moved since the last call (then it is
    /// counted as saved), `None` otherwise.
    pub fn unsaved_record(&mut self, stream: &str) -> Option<AudienceRecord> {
        let a = self.streams.get_mut(stream).filter(|a| a.unsaved)?;
        a.unsaved = false;
        Some(AudienceRecord {
            total: a.total.clone(),
            peak: a.peak,
        })
    }

    /// Fold a stored record into `stream` (after a restart): the lifetime sketch becomes the
    /// union of both, the peak the larger.
    pub fn restore(&mut self, stream: &str, record: &AudienceRecord) {
        let a = self.streams.entry(stream.to_string()).or_default();
        a.total.merge(&record.total);
        a.peak = a.peak.max(record.peak);
    }

    /// Drop everything about `stream` (it ended and its numbers are stored elsewhere).
    pub fn forget(&mut self, stream: &str) {
        self.streams.remove(stream);
    }

    /// Streams with any state.
    pub fn streams(&self) -> impl Iterator<Item = &str> {
        self.streams.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn within(estimate: u64, truth: u64, tolerance: f64) -> bool {
        (estimate as f64 - truth as f64).abs() <= truth as f64 * tolerance
    }

    #[test]
    fn ten_thousand_heartbeating_viewers_count_within_two_percent() {
        let mut c = ViewerCounter::new(Window::default());
        // Each viewer beats every 30 s for five minutes, starting at a different second.
        let mut now = 0;
        let mut current = Vec::new();
        for round in 0..10 {
            for v in 0..10_000u64 {
                now = round * 30 + v % 30;
                c.seen("s", &format!("sid-{v}"), at(now));
            }
            current.push(c.current("s", at(now)));
        }
        for n in &current[1..] {
            assert!(within(*n, 10_000, 0.02), "current {n} of 10,000 ({current:?})");
        }
        assert!(within(c.total("s"), 10_000, 0.02), "total {}", c.total("s"));
        assert!(within(c.peak("s"), 10_000, 0.02), "peak {}", c.peak("s"));
        assert!(c.peak("s") >= *current.iter().max().expect("counted"));
    }

    #[test]
    fn hundred_thousand_viewers_within_two_percent() {
        let mut c = ViewerCounter::new(Window::default());
        for v in 0..100_000u64 {
            c.seen("s", &format!("{v:x}"), at(v % 50));
        }
        let n = c.current("s", at(55));
        assert!(within(n, 100_000, 0.02), "current {n}");
    }

    #[test]
    fn viewers_who_stop_drop_out_within_the_window() {
        let w = Window::default();
        let mut c = ViewerCounter::new(w);
        for v in 0..1_000u64 {
            c.seen("s", &format!("gone-{v}"), at(0));
            c.seen("s", &format!("stays-{v}"), at(0));
        }
        // Only the stayers keep beating, every 30 s; the others stopped at 0.
        let mut now = 0;
        while now < 120 {
            now += 30;
            for v in 0..1_000u64 {
                c.seen("s", &format!("stays-{v}"), at(now));
            }
            let n = c.current("s", at(now));
            if now < 60 {
                assert!(within(n, 2_000, 0.02), "at {now} s: {n}");
            }
        }
        // At most two minutes after their last beat the leavers are gone.
        let n = c.current("s", at(120));
        assert!(within(n, 1_000, 0.02), "at 120 s: {n}");
        assert!(within(c.peak("s"), 2_000, 0.02));
        assert!(within(c.total("s"), 2_000, 0.02), "total keeps them");
        // And everyone is gone two minutes after the last beat of all.
        assert_eq!(c.current("s", at(120 + 120)), 0);
    }

    #[test]
    fn the_drop_out_is_never_later_than_the_window() {
        let w = Window::default();
        // Last seen at every second of a bucket: counted for at least half the window,
        // never past the whole of it.
        for last in 0..60 {
            let mut c = ViewerCounter::new(w);
            c.seen("s", "v", at(last));
            assert_eq!(
                c.current("s", at(last + 60)),
                1,
                "last seen {last}: still there at +60 s"
            );
            let gone_at = (last..).find(|t| c.current("s", at(*t)) == 0).expect("drops out");
            assert!(
                gone_at - last <= 120,
                "last seen {last}: dropped out after {} s",
                gone_at - last
            );
        }
    }

    #[test]
    fn a_restored_record_keeps_earlier_viewers_counted_once() {
        let mut before = ViewerCounter::new(Window::default());
        for i in 0..1_000 {
            before.seen("s", &format!("v{i}"), at(0));
        }
        assert_eq!(before.current("s", at(1)), before.peak("s"));
        let record = before.unsaved_record("s").expect("moved");
        assert!(before.unsaved_record("s").is_none(), "taken once");
        before.seen("s", "v3", at(2));
        assert!(before.unsaved_record("s").is_none(), "a repeat changes nothing");

        // A new process: half the old viewers come back, 500 new ones arrive.
        let mut after = ViewerCounter::new(Window::default());
        after.restore("s", &record);
        for i in 500..1_500 {
            after.seen("s", &format!("v{i}"), at(60));
        }
        let stats = after.stats("s", at(61));
        assert!(within(stats.total, 1_500, 0.02), "{stats:?}");
        assert!(within(stats.current, 1_000, 0.02), "{stats:?}");
        assert_eq!(stats.peak, record.peak.max(stats.current));
        assert!(after.unsaved_record("s").is_some());
    }

    #[test]
    fn streams_are_counted_apart_and_forgotten() {
        let mut c = ViewerCounter::new(Window::default());
        c.seen("a", "x", at(0));
        c.seen("a", "y", at(0));
        c.seen("b", "x", at(0));
        assert_eq!(
            c.stats("a", at(1)),
            AudienceStats {
                current: 2,
                peak: 2,
                total: 2
            }
        );
        assert_eq!(c.current("b", at(1)), 1);
        c.forget("a");
        assert_eq!(c.stats("a", at(1)), AudienceStats::default());
        assert_eq!(c.streams().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn memory_stays_at_two_buckets() {
        let mut c = ViewerCounter::new(Window::default());
        for minute in 0..30 {
            c.seen("s", "v", at(minute * 60));
        }
        assert!(c.streams.get("s").is_some_and(|a| a.buckets.len() <= 2));
    }

    proptest! {
        #[test]
        fn counts_never_panic_and_the_window_is_at_least_its_last_bucket(
            events in proptest::collection::vec((0u8..4, 0u16..500, 0u64..400), 1..200),
        ) {
            let mut c = ViewerCounter::new(Window::default());
            let mut events = events;
            events.sort_by_key(|e| e.2);
            for (stream, viewer, t) in &events {
                c.seen(&stream.to_string(), &viewer.to_string(), at(*t));
            }
            let last = events.last().map_or(0, |e| e.2);
            for stream in 0..4u8 {
                let s = stream.to_string();
                let stats = c.stats(&s, at(last));
                prop_assert!(stats.peak >= stats.current);
                // Everyone seen in the latest bucket is part of the current count.
                let bucket = Window::default().bucket(at(last));
                let mut part = HyperLogLog::new();
                for (st, v, t) in &events {
                    if *st == stream && Window::default().bucket(at(*t)) == bucket {
                        part.insert(v.to_string().as_bytes());
                    }
                }
                prop_assert!(stats.current >= part.count());
            }
        }
    }
}
