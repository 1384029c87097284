//! `power_of_two`: the power of two random choices (Mitzenmacher, 2001):
//! sample two distinct instances at random and send to the less loaded
//! (fewer in-flight requests per unit of weight). Nearly as good as
//! least-connections at spreading load, without scanning every instance and
//! without herding when several balancers share one view.

use super::least_connections::lighter;
use super::scan::two_distinct;
use crate::candidate::{Balancer, Candidate, PickContext};

#[derive(Debug, Default, Clone, Copy)]
pub struct PowerOfTwo;

impl Balancer for PowerOfTwo {
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize {
        if cands.len() == 1 {
            return 0;
        }
        let (a, b) = two_distinct(cands.len(), ctx.rng);
        if lighter(&cands[b], &cands[a]) {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RandomSource;
    use proptest::prelude::*;

    /// Replays a fixed list of numbers, to know which two were sampled.
    struct Script(Vec<u64>, usize);
    impl RandomSource for Script {
        fn below(&mut self, n: u64) -> u64 {
            let v = self.0[self.1 % self.0.len()] % n;
            self.1 += 1;
            v
        }
    }

    proptest! {
        #[test]
        fn never_returns_the_heavier_of_its_two_samples(
            loads in proptest::collection::vec((1u32..5, 0u32..20), 2..10),
            r1 in any::<u64>(), r2 in any::<u64>(),
        ) {
            let cands: Vec<Candidate> = loads.iter().enumerate().map(|(s, &(w, f))| Candidate::new(s, w, f)).collect();
            let n = cands.len();
            let mut script = Script(vec![r1, r2], 0);
            let (a, b) = two_distinct(n, &mut Script(vec![r1, r2], 0));
            let mut ctx = PickContext::new(&mut script);
            let i = PowerOfTwo.pick(&cands, &mut ctx);
            prop_assert!(i == a || i == b, "picked outside its samples");
            let other = if i == a { b } else { a };
            prop_assert!(!lighter(&cands[other], &cands[i]), "returned the heavier sample");
        }
    }
}
