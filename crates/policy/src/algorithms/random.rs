//! `random`: a uniformly random instance, weighted by weight (an instance
//! of weight 3 is three times as likely as one of weight 1). Stateless.

use crate::candidate::{Balancer, Candidate, PickContext};

#[derive(Debug, Default, Clone, Copy)]
pub struct WeightedRandom;

impl Balancer for WeightedRandom {
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize {
        let total: u64 = cands.iter().map(|c| u64::from(c.weight.max(1))).sum();
        let mut r = ctx.rng.below(total);
        for (i, c) in cands.iter().enumerate() {
            let w = u64::from(c.weight.max(1));
            if r < w {
                return i;
            }
            r -= w;
        }
        cands.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::testutil::{cands, with_ctx};

    #[test]
    fn shares_follow_weights_statistically() {
        let c = cands(&[3, 1]);
        let n = 40_000;
        let first = with_ctx(11, None, |ctx| {
            (0..n).filter(|_| WeightedRandom.pick(&c, ctx) == 0).count()
        });
        let share = first as f64 / n as f64;
        // 75 % expected; 4 standard deviations of a binomial at n = 40k is ~0.9 %.
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn a_single_candidate_is_always_chosen() {
        let c = cands(&[5]);
        with_ctx(1, None, |ctx| {
            assert!((0..100).all(|_| WeightedRandom.pick(&c, ctx) == 0))
        });
    }
}
