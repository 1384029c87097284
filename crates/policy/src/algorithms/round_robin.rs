//! `round_robin`: plain rotation over the eligible instances, ignoring
//! weights. One relaxed atomic increment per pick.

use crate::candidate::{Balancer, Candidate, PickContext};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn pick(&self, cands: &[Candidate], _ctx: &mut PickContext<'_>) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % cands.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::testutil::cands;
    use proptest::prelude::*;

    #[test]
    fn rotates_in_order() {
        let rr = RoundRobin::default();
        let c = cands(&[5, 1, 1]);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut rng = PickContext::new(&mut rng);
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&c, &mut rng)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    proptest! {
        #[test]
        fn every_instance_gets_an_equal_share_over_whole_cycles(n in 1usize..16, cycles in 1usize..20) {
            let rr = RoundRobin::default();
            let c = cands(&vec![1; n]);
            let mut rng = fastrand::Rng::with_seed(7);
        let mut rng = PickContext::new(&mut rng);
            let mut counts = vec![0usize; n];
            for _ in 0..n * cycles {
                counts[rr.pick(&c, &mut rng)] += 1;
            }
            prop_assert!(counts.iter().all(|&k| k == cycles));
        }
    }
}
