//! `least_connections`: the instance with the fewest in-flight requests (or
//! open WebSockets) per unit of weight, like nginx's `least_conn` and
//! HAProxy's `leastconn`.
//!
//! Loads are compared as `in_flight_a * weight_b < in_flight_b * weight_a`,
//! exact integer arithmetic, no division. Ties are broken by rotation: the
//! scan starts at a moving offset, so an idle pool is served round-robin
//! instead of always by its first instance.

use super::scan::rotating_min;
use crate::candidate::{Balancer, Candidate, PickContext};
use std::sync::atomic::AtomicUsize;

#[derive(Debug, Default)]
pub struct LeastConnections {
    offset: AtomicUsize,
}

/// True when `a` carries strictly less load per unit of weight than `b`.
pub fn lighter(a: &Candidate, b: &Candidate) -> bool {
    u64::from(a.in_flight) * u64::from(b.weight.max(1))
        < u64::from(b.in_flight) * u64::from(a.weight.max(1))
}

impl Balancer for LeastConnections {
    fn pick(&self, cands: &[Candidate], _ctx: &mut PickContext<'_>) -> usize {
        rotating_min(cands, &self.offset, lighter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(slot: usize, weight: u32, in_flight: u32) -> Candidate {
        Candidate::new(slot, weight, in_flight)
    }

    #[test]
    fn picks_the_fewest_in_flight() {
        let lc = LeastConnections::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut rng = PickContext::new(&mut rng);
        let cands = [c(0, 1, 5), c(1, 1, 2), c(2, 1, 9)];
        for _ in 0..5 {
            assert_eq!(lc.pick(&cands, &mut rng), 1);
        }
    }

    #[test]
    fn divides_by_weight() {
        // 6 in flight on weight 3 (2 per unit) beats 3 on weight 1.
        let lc = LeastConnections::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut rng = PickContext::new(&mut rng);
        assert_eq!(lc.pick(&[c(0, 1, 3), c(1, 3, 6)], &mut rng), 1);
    }

    #[test]
    fn ties_rotate() {
        let lc = LeastConnections::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut rng = PickContext::new(&mut rng);
        let cands = [c(0, 1, 0), c(1, 1, 0), c(2, 1, 0)];
        let picks: Vec<usize> = (0..3).map(|_| lc.pick(&cands, &mut rng)).collect();
        let mut sorted = picks.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2], "{picks:?}");
    }

    proptest! {
        #[test]
        fn never_picks_a_heavier_instance_than_some_other(
            loads in proptest::collection::vec((1u32..10, 0u32..50), 1..10),
            turns in 1usize..5,
        ) {
            let lc = LeastConnections::default();
            let mut rng = fastrand::Rng::with_seed(3);
        let mut rng = PickContext::new(&mut rng);
            let cands: Vec<Candidate> = loads.iter().enumerate().map(|(s, &(w, f))| c(s, w, f)).collect();
            for _ in 0..turns {
                let i = lc.pick(&cands, &mut rng);
                for other in &cands {
                    prop_assert!(!lighter(other, &cands[i]));
                }
            }
        }
    }
}
