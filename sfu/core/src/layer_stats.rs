//! Measured bitrate of each simulcast layer of a room's video.

use std::time::{Duration, Instant};

use str0m::media::Rid;

const BUCKET: Duration = Duration::from_millis(250);
const BUCKETS: usize = 8;

#[derive(Debug)]
struct Layer {
    rid: Option<Rid>,
    buckets: [u64; BUCKETS],
    bucket_start: Instant,
    head: usize,
    first_seen: Instant,
    last_seen: Instant,
}

impl Layer {
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_seen) >= INACTIVE_AFTER {
            // Back after a pause: measure afresh.
            self.first_seen = now;
        }
        while now.saturating_duration_since(self.bucket_start) >= BUCKET {
            self.bucket_start += BUCKET;
            self.head = (self.head + 1) % BUCKETS;
            self.buckets[self.head] = 0;
            if now.saturating_duration_since(self.bucket_start) > BUCKET * BUCKETS as u32 {
                self.buckets = [0; BUCKETS];
                self.bucket_start = now;
            }
        }
    }
}

/// Sliding-window bitrate per layer (2 s window), and which layers are active.
#[derive(Debug, Default)]
pub struct LayerStats {
    layers: Vec<Layer>,
}

/// How long a layer must have been seen before its bitrate is reported (0 until then).
const MATURE_AFTER: Duration = Duration::from_millis(1000);

/// How long without packets before a layer counts as inactive.
const INACTIVE_AFTER: Duration = Duration::from_millis(1500);

impl LayerStats {
    /// Count a packet's payload bytes for its layer.
    pub fn record(&mut self, rid: Option<Rid>, bytes: usize, now: Instant) {
        let layer = match self.layers.iter_mut().position(|l| l.rid == rid) {
            Some(i) => &mut self.layers[i],
            None => {
                self.layers.push(Layer {
                    rid,
                    buckets: [0; BUCKETS],
                    bucket_start: now,
                    head: 0,
                    first_seen: now,
                    last_seen: now,
                });
                // "h" is the middle of q/h/f (Chromium) but the top of l/m/h.
                let lmh = self
                    .layers
                    .iter()
                    .any(|l| matches!(l.rid.as_deref(), Some("l" | "m")));
                self.layers.sort_by_key(|l| rid_rank(l.rid.as_ref(), lmh));
                let i = self
                    .layers
                    .iter()
                    .position(|l| l.rid == rid)
                    .expect("the layer was just inserted");
                &mut self.layers[i]
            }
        };
        layer.roll(now);
        layer.buckets[layer.head] += bytes as u64;
        layer.last_seen = now;
    }

    /// Active layers from lowest to highest with their bitrate in bit/s (0 while a layer
    /// has been seen for less than a second).
    pub fn active(&mut self, now: Instant) -> Vec<(Rid, u64)> {
        self.layers
            .iter_mut()
            .filter(|l| now.saturating_duration_since(l.last_seen) < INACTIVE_AFTER)
            .filter_map(|l| {
                l.roll(now);
                let bytes: u64 = l.buckets.iter().sum();
                let age = now.saturating_duration_since(l.first_seen);
                if age < MATURE_AFTER {
                    // Too young to tell: a keyframe burst or a slow start would mislead.
                    return l.rid.map(|r| (r, 0));
                }
                // A layer seen for less than the window must not look cheaper than it is.
                let window = (BUCKET * BUCKETS as u32).min(age).as_secs_f64();
                l.rid.map(|r| (r, (bytes as f64 * 8.0 / window) as u64))
            })
            .collect()
    }

    /// The layer a viewer starts on while the rates are unmeasured: the middle active one
    /// (the allocator's rule); `None` for a single-layer track.
    pub fn starting_layer(&mut self, now: Instant) -> Option<Rid> {
        let active = self.active(now);
        active.get(active.len().saturating_sub(1) / 2).map(|(r, _)| *r)
    }

    /// Whether the track is simulcast (its packets carry rids).
    pub fn is_simulcast(&self) -> bool {
        self.layers.iter().any(|l| l.rid.is_some())
    }
}

/// The highest of a publisher's declared simulcast layers, by the same naming rules.
pub fn top_layer(rids: &[Rid]) -> Option<Rid> {
    let lmh = rids.iter().any(|r| matches!(&**r, "l" | "m"));
    rids.iter().copied().max_by_key(|r| rid_rank(Some(r), lmh))
}

/// Order layers low to high: the conventional q/h/f and l/m/h names, and 0/1/2. `lmh`: the
/// publisher names its layers l/m/h, so "h" is its highest rather than its half.
fn rid_rank(rid: Option<&Rid>, lmh: bool) -> (u8, String) {
    let Some(rid) = rid else { return (0, String::new()) };
    let s = rid.to_string();
    let rank = match s.as_str() {
        "q" | "l" | "low" | "0" => 1,
        "h" if lmh => 3,
        "h" | "m" | "mid" | "1" => 2,
        "f" | "hi" | "high" | "2" => 3,
        _ => 4,
    };
    (rank, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_measures_layers() {
        let t0 = Instant::now();
        let mut s = LayerStats::default();
        for i in 0..80u32 {
            let t = t0 + Duration::from_millis(25 * u64::from(i));
            s.record(Some("f".into()), 1000, t);
            s.record(Some("q".into()), 100, t);
        }
        let now = t0 + Duration::from_millis(2000);
        let a = s.active(now);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0.to_string(), "q");
        // 1000 bytes every 25 ms = 320 kbit/s.
        assert!((250_000..400_000).contains(&a[1].1), "{:?}", a);
        assert!(s.active(now + Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn h_is_the_top_of_l_m_h_and_the_middle_of_q_h_f() {
        let t0 = Instant::now();
        let order = |rids: &[&str]| {
            let mut s = LayerStats::default();
            for r in rids {
                s.record(Some((*r).into()), 100, t0);
            }
            s.active(t0)
                .into_iter()
                .map(|(r, _)| r.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&["h", "m", "l"]), ["l", "m", "h"]);
        assert_eq!(order(&["h", "l"]), ["l", "h"]);
        assert_eq!(order(&["f", "h", "q"]), ["q", "h", "f"]);
        assert_eq!(order(&["h", "q"]), ["q", "h"]);
    }

    #[test]
    fn the_top_declared_layer() {
        let rids = |names: &[&str]| names.iter().map(|n| Rid::from(*n)).collect::<Vec<_>>();
        assert_eq!(top_layer(&rids(&["q", "h", "f"])), Some("f".into()));
        assert_eq!(top_layer(&rids(&["h", "l", "m"])), Some("h".into()));
        assert_eq!(top_layer(&rids(&["h", "q"])), Some("h".into()));
        assert_eq!(top_layer(&[]), None);
    }

    #[test]
    fn a_new_layer_is_not_underestimated() {
        let t0 = Instant::now();
        let mut s = LayerStats::default();
        // A 1 Mbit/s layer: 125 bytes per ms. Unmeasured at first, then not diluted by the
        // part of the window before it appeared.
        for ms in 0..1300u64 {
            s.record(Some("f".into()), 125, t0 + Duration::from_millis(ms));
            if ms == 300 {
                assert_eq!(s.active(t0 + Duration::from_millis(ms))[0].1, 0);
            }
        }
        let a = s.active(t0 + Duration::from_millis(1300));
        assert!((800_000..1_200_000).contains(&a[0].1), "{a:?}");
    }
}
