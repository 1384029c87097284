//! A pool member as the policy's view reads it ([`InstanceFacts`]): each
//! fact one read of the instance's atomics (or of its estimates' lock),
//! plus the member's weight, limit and tier in this pool. The rules that
//! combine them live once in `fulcrum_policy::view`.

use super::snapshot::Member;
use fulcrum_policy::{Estimates, InstanceFacts, Load, Priority};
use std::sync::atomic::Ordering::Relaxed;

impl InstanceFacts for Member {
    fn configured_weight(&self) -> u32 {
        self.weight
    }
    fn weight_override(&self) -> Option<u32> {
        self.inst.weight_override()
    }
    fn dynamic_weight(&self) -> Option<u32> {
        self.dynamic_weight.get()
    }
    fn healthy(&self) -> bool {
        self.inst.is_healthy()
    }
    fn drained(&self) -> bool {
        self.inst.is_drained()
    }
    fn ejected_until_ms(&self) -> u64 {
        self.inst.ejected_until_ms()
    }
    fn up_since_ms(&self) -> u64 {
        self.inst.up_since_ms()
    }
    fn in_flight(&self) -> u32 {
        self.inst.in_flight()
    }
    fn max_concurrent(&self) -> Option<u32> {
        match self.learn {
            None => self.max_concurrent,
            Some(b) => Some(
                self.inst
                    .learned_limit()
                    .unwrap_or(b.min)
                    .clamp(b.min, b.max),
            ),
        }
    }
    fn priority(&self) -> Priority {
        self.priority
    }
    fn calls(&self) -> u64 {
        self.inst.calls.load(Relaxed)
    }
    fn estimates(&self) -> Estimates {
        self.inst.estimates()
    }
    fn load(&self) -> Option<Load> {
        self.inst.load()
    }
}
