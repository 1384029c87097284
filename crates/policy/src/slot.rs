//! [`Slot`]: one instance as the selector sees it — may it be used at all,
//! and the [`Candidate`] an algorithm will see if it is eligible.
//!
//! A leaf, so that the selector ([`crate::select`](mod@crate::select)), the view that builds
//! slots (`crate::view`) and the `least_calls` rejoin floor, which reads
//! them, share the type without importing one another.

use crate::candidate::Candidate;

/// The state of one instance as the selector sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Healthy, not ejected, not drained, not excluded by the caller.
    pub usable: bool,
    /// What the algorithm will see if this instance is eligible
    /// (`cand.slot` is this slot's index; `cand.priority` its tier).
    pub cand: Candidate,
}

impl Slot {
    /// Below its `max_concurrent` (always, when it has none).
    pub fn has_room(&self) -> bool {
        self.cand
            .max_concurrent
            .is_none_or(|m| self.cand.in_flight < m)
    }
}
