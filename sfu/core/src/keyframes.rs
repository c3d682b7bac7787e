//! Throttling of keyframe requests toward a publisher.
//!
//! Every viewer that joins or switches layer needs a keyframe, and a thousand viewers must
//! not turn into a thousand PLIs: one request per layer per interval reaches the encoder.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Remembers when each layer was last asked for a keyframe.
#[derive(Debug)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last: HashMap<Option<Rid>, Instant>,
}

impl KeyframeThrottle {
    /// At most one request per layer per `min_interval`.
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle {
            min_interval,
            last: HashMap::new(),
        }
    }

    /// Whether a request for `rid` may go out now; records it when it may.
    pub fn allow(&mut self, rid: Option<Rid>, now: Instant) -> bool {
        match self.last.get(&rid) {
            Some(t) if now.saturating_duration_since(*t) < self.min_interval => false,
            _ => {
                self.last.insert(rid, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_layer_per_interval() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_millis(300));
        assert!(k.allow(Some("q".into()), t0));
        assert!(!k.allow(Some("q".into()), t0 + Duration::from_millis(100)));
        assert!(k.allow(Some("f".into()), t0 + Duration::from_millis(100)));
        assert!(k.allow(Some("q".into()), t0 + Duration::from_millis(300)));
    }
}
