//! A pool member's dynamic weight (`dynamic_weights:`): one relaxed
//! atomic that the control plane's task stores every interval and the
//! policy's view reads on every pick (`InstanceFacts::dynamic_weight`).
//! Per membership, not per instance: the weight is relative to the pool's
//! other members, and an instance in two pools has one in each. Carried
//! over by snapshot rebuilds like the member's counters, while the pool
//! keeps `dynamic_weights:` on.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// No dynamic weight (off, or not computed yet).
const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub struct DynamicWeight(AtomicU32);

impl Default for DynamicWeight {
    fn default() -> Self {
        Self(AtomicU32::new(NONE))
    }
}

impl DynamicWeight {
    /// The weight given last (0 while the instance is down); `None` before
    /// the first interval, or with `dynamic_weights:` off.
    pub fn get(&self) -> Option<u32> {
        Some(self.0.load(Relaxed)).filter(|w| *w != NONE)
    }

    pub fn set(&self, w: Option<u32>) {
        self.0.store(w.map_or(NONE, |w| w.min(NONE - 1)), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_until_set_and_zero_is_a_weight() {
        let d = DynamicWeight::default();
        assert_eq!(d.get(), None);
        d.set(Some(0));
        assert_eq!(d.get(), Some(0), "down");
        d.set(Some(u32::MAX));
        assert_eq!(d.get(), Some(u32::MAX - 1));
        d.set(None);
        assert_eq!(d.get(), None);
    }
}
