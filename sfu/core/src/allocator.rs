//! Per-subscriber simulcast layer choice from the bandwidth estimate.
//!
//! The rule: go down at once when the estimate no longer carries the current layer; go up
//! only when the estimate has carried the higher layer, with headroom, for a sustained
//! period. That asymmetry is the hysteresis that stops a viewer flapping between layers.

use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Tuning of the allocator.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// A layer fits when `bitrate * headroom <= estimate`.
    pub headroom: f64,
    /// How long a higher layer must fit before switching up.
    pub up_hold: Duration,
    /// Bitrate assumed for a layer that has not been measured yet.
    pub unmeasured_bps: u64,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            headroom: 1.15,
            up_hold: Duration::from_secs(2),
            unmeasured_bps: 300_000,
        }
    }
}

/// Whether the layer is chosen by the allocator or pinned by the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerChoice {
    /// The allocator picks from the estimate.
    Auto,
    /// The viewer asked for this layer.
    Pinned(Rid),
}

/// Chooses one subscriber's layer. Pure: feed it the estimate and the layers' bitrates.
#[derive(Debug)]
pub struct Allocator {
    config: AllocatorConfig,
    choice: LayerChoice,
    current: Option<Rid>,
    /// A higher layer that fits, and since when it has fitted.
    rising: Option<(Rid, Instant)>,
}

impl Allocator {
    /// A new allocator in automatic mode.
    pub fn new(config: AllocatorConfig) -> Self {
        Allocator {
            config,
            choice: LayerChoice::Auto,
            current: None,
            rising: None,
        }
    }

    /// Pin a layer or go back to automatic.
    pub fn set_choice(&mut self, choice: LayerChoice) {
        self.choice = choice;
        self.rising = None;
    }

    /// The mode.
    pub fn choice(&self) -> &LayerChoice {
        &self.choice
    }

    /// The layer last decided.
    pub fn current(&self) -> Option<&Rid> {
        self.current.as_ref()
    }

    /// Decide the layer for the current estimate. `layers` lists the active layers from
    /// lowest to highest with their measured bitrates (0 = not measured yet). Returns the
    /// layer the subscriber should now get.
    pub fn update(&mut self, now: Instant, estimate_bps: u64, layers: &[(Rid, u64)]) -> Option<Rid> {
        if layers.is_empty() {
            return self.current;
        }
        if let LayerChoice::Pinned(rid) = &self.choice
            && layers.iter().any(|(r, _)| r == rid)
        {
            self.current = Some(*rid);
            return self.current;
        }

        let cost = |bps: u64| {
            let bps = if bps == 0 { self.config.unmeasured_bps } else { bps };
            (bps as f64 * self.config.headroom) as u64
        };
        let best_idx = layers
            .iter()
            .rposition(|(_, bps)| cost(*bps) <= estimate_bps)
            .unwrap_or(0);
        let current_idx = self
            .current
            .and_then(|c| layers.iter().position(|(r, _)| *r == c));

        let unmeasured = layers.iter().any(|(_, bps)| *bps == 0);
        let next_idx = match current_idx {
            // Nothing measured yet: start in the middle, where most links are, and let the
            // estimate move it once the layers' rates are known.
            None if unmeasured => (layers.len() - 1) / 2,
            None => best_idx,
            Some(cur) if best_idx <= cur => {
                self.rising = None;
                best_idx
            }
            Some(cur) => {
                let candidate = layers[best_idx].0;
                match self.rising {
                    Some((rid, since)) if rid == candidate => {
                        if now.saturating_duration_since(since) >= self.config.up_hold {
                            self.rising = None;
                            best_idx
                        } else {
                            cur
                        }
                    }
                    _ => {
                        self.rising = Some((candidate, now));
                        cur
                    }
                }
            }
        };
        self.current = Some(layers[next_idx].0);
        self.current
    }

    /// The bitrate the bandwidth estimator should try to discover: the next layer up, or
    /// the top layer's need when already there.
    pub fn desired_bps(&self, layers: &[(Rid, u64)]) -> u64 {
        let idx = self
            .current
            .and_then(|c| layers.iter().position(|(r, _)| *r == c))
            .map(|i| (i + 1).min(layers.len().saturating_sub(1)))
            .unwrap_or(0);
        layers
            .get(idx)
            .map(|(_, bps)| {
                let bps = if *bps == 0 {
                    self.config.unmeasured_bps
                } else {
                    *bps
                };
                (bps as f64 * self.config.headroom * 1.2) as u64
            })
            .unwrap_or(self.config.unmeasured_bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<(Rid, u64)> {
        vec![
            ("q".into(), 150_000),
            ("h".into(), 500_000),
            ("f".into(), 2_500_000),
        ]
    }

    fn name(r: Option<Rid>) -> String {
        r.map(|r| r.to_string()).unwrap_or_default()
    }

    #[test]
    fn falls_fast_climbs_slowly() {
        let t0 = Instant::now();
        let mut a = Allocator::new(AllocatorConfig::default());
        assert_eq!(name(a.update(t0, 5_000_000, &layers())), "f");
        // The estimate collapses: down at once, past the middle layer.
        assert_eq!(name(a.update(t0, 300_000, &layers())), "q");
        // It recovers: no climb until the hold time has passed.
        let mut t = t0;
        for _ in 0..19 {
            t += Duration::from_millis(100);
            assert_eq!(name(a.update(t, 5_000_000, &layers())), "q");
        }
        t += Duration::from_millis(250);
        assert_eq!(name(a.update(t, 5_000_000, &layers())), "f");
    }

    #[test]
    fn no_flapping_around_a_threshold() {
        let t0 = Instant::now();
        let mut a = Allocator::new(AllocatorConfig::default());
        a.update(t0, 700_000, &layers());
        let mut switches = 0;
        let mut last = a.current().copied();
        for i in 0..100u64 {
            let t = t0 + Duration::from_millis(100 * i);
            // Oscillates around what "h" needs, each dip resets the climb.
            let est = if i % 5 == 0 { 400_000 } else { 3_000_000 };
            let now = a.update(t, est, &layers());
            if now != last {
                switches += 1;
                last = now;
            }
        }
        assert!(switches <= 2, "switched {switches} times");
    }

    #[test]
    fn starts_in_the_middle_while_rates_are_unknown() {
        let t0 = Instant::now();
        let mut a = Allocator::new(AllocatorConfig::default());
        let young = vec![("q".into(), 0), ("h".into(), 0), ("f".into(), 0)];
        assert_eq!(name(a.update(t0, 1_000_000, &young)), "h");
        // Once measured, a poor link falls at once.
        assert_eq!(name(a.update(t0, 200_000, &layers())), "q");
    }

    #[test]
    fn pinned_layer_wins_while_it_exists() {
        let t0 = Instant::now();
        let mut a = Allocator::new(AllocatorConfig::default());
        a.set_choice(LayerChoice::Pinned("q".into()));
        assert_eq!(name(a.update(t0, 10_000_000, &layers())), "q");
        a.set_choice(LayerChoice::Pinned("x".into()));
        // An unknown pin falls back to the estimate (going down is immediate).
        assert_eq!(name(a.update(t0, 200_000, &layers())), "q");
        a.set_choice(LayerChoice::Auto);
        assert_eq!(a.desired_bps(&layers()), (500_000.0 * 1.15 * 1.2) as u64);
    }
}
