//! `least_calls`: the instance with the fewest calls so far — the rule of
//! the video-analysis platform Fulcrum replaces, which balanced algorithm
//! services by call count. Ties rotate.
//!
//! The call count is kept by the data plane; an instance that joins a pool
//! starts at the pool's current minimum, not at zero, so it is not flooded
//! with every request until it has "caught up" (see
//! `fulcrum_dataplane::snapshot`). The same holds for an instance coming
//! back from an outage: while it is out of service its count is held at
//! [`rejoin_floor`], the minimum of the instances in service, so it rejoins
//! level with them (the simulator showed a returning instance taking every
//! request for 19 s without this).

use super::scan::rotating_min;
use crate::candidate::{Balancer, Candidate, PickContext};
use crate::priority::Priority;
use crate::slot::Slot;
use std::sync::atomic::AtomicUsize;

#[derive(Debug, Default)]
pub struct LeastCalls {
    offset: AtomicUsize,
}

impl Balancer for LeastCalls {
    fn pick(&self, cands: &[Candidate], _ctx: &mut PickContext<'_>) -> usize {
        rotating_min(cands, &self.offset, |a, b| a.calls < b.calls)
    }
}

/// The call count at which an instance of tier `priority` that is out of
/// service is held: the least count among the instances of the same tier in
/// service (`None` when none is). Per tier, because a backup or low-priority
/// instance that is rarely used has few calls and would make the floor
/// meaningless for the tier that serves.
pub fn rejoin_floor(slots: &[Slot], priority: Priority) -> Option<u64> {
    slots
        .iter()
        .filter(|s| s.usable && s.cand.priority == priority)
        .map(|s| s.cand.calls)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::testutil::with_ctx;
    use proptest::prelude::*;

    proptest! {
        /// Simulating the counts the data plane keeps: after any number of
        /// picks from any starting counts, the spread never grows, and once
        /// even it stays within one call.
        #[test]
        fn picks_a_minimum_and_evens_out_the_counts(
            start in proptest::collection::vec(0u64..50, 1..8),
            picks in 1usize..300,
        ) {
            let lc = LeastCalls::default();
            let mut calls = start.clone();
            with_ctx(3, None, |ctx| {
                for _ in 0..picks {
                    let cands: Vec<Candidate> = calls.iter().enumerate()
                        .map(|(s, &c)| Candidate { calls: c, ..Candidate::new(s, 1, 0) }).collect();
                    let i = lc.pick(&cands, ctx);
                    let min = *calls.iter().min().unwrap();
                    assert_eq!(calls[i], min, "not a minimum");
                    calls[i] += 1;
                }
            });
            let (min, max) = (*calls.iter().min().unwrap(), *calls.iter().max().unwrap());
            let start_spread = start.iter().max().unwrap() - start.iter().min().unwrap();
            prop_assert!(max - min <= start_spread.max(1));
        }
    }
}
