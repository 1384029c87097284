//! Why an instance was picked: the data the policy hands back with every
//! choice, so the data plane can count it (`fulcrum_picks_total{reason}`)
//! without the policy doing any I/O. Most routing bugs in peer gateways
//! were found by looking at exactly this: a pool whose picks are mostly
//! `tier_spill` or `hash_fallback` is not balancing the way its config
//! reads.
//!
//! A leaf: the selector, the algorithms and the view set it; nothing here
//! imports them.

/// Why a pick went where it did. One reason per pick; when several apply,
/// in this order: `queue_handoff` (set by the data plane, for a slot taken
/// after waiting in the queue), `panic`, `ejected_fallback`, `tier_spill`,
/// then the algorithm's own (`hash_fallback`, `bounded_load_skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PickReason {
    /// The algorithm's own choice among the usable instances of the best tier.
    #[default]
    Algorithm,
    /// A lower priority tier: every instance of a better tier was down,
    /// full, drained or already tried.
    TierSpill,
    /// `consistent_hash`: the key's home instance was unusable (down,
    /// full, drained or already tried); the next one clockwise took it.
    HashFallback,
    /// `consistent_hash`: the key's home instance was usable but at its
    /// bounded-load cap; the walk went on clockwise.
    BoundedLoadSkip,
    /// The slot was taken after waiting in the pool's admission queue.
    QueueHandoff,
    /// Nothing else was usable: an ejected (or cooling-down) instance that
    /// probes say is up.
    EjectedFallback,
    /// Panic mode: every instance looked down; health was ignored.
    Panic,
}

impl PickReason {
    pub const ALL: [PickReason; 7] = [
        PickReason::Algorithm,
        PickReason::TierSpill,
        PickReason::HashFallback,
        PickReason::BoundedLoadSkip,
        PickReason::QueueHandoff,
        PickReason::EjectedFallback,
        PickReason::Panic,
    ];

    /// The `reason` label value.
    pub fn name(self) -> &'static str {
        match self {
            PickReason::Algorithm => "algorithm",
            PickReason::TierSpill => "tier_spill",
            PickReason::HashFallback => "hash_fallback",
            PickReason::BoundedLoadSkip => "bounded_load_skip",
            PickReason::QueueHandoff => "queue_handoff",
            PickReason::EjectedFallback => "ejected_fallback",
            PickReason::Panic => "panic",
        }
    }

    /// Position in [`Self::ALL`] (an index into a counter array).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_list_and_names_are_distinct() {
        for (i, r) in PickReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = PickReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PickReason::ALL.len());
    }
}
