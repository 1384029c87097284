//! Test helpers for the algorithm files: candidates from a list of
//! weights, and a seeded [`PickContext`].

use crate::candidate::{Candidate, PickContext};

pub fn cands(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .enumerate()
        .map(|(slot, &weight)| Candidate::new(slot, weight, 0))
        .collect()
}

/// Runs `f` with a seeded context.
pub fn with_ctx<T>(seed: u64, key: Option<u64>, f: impl FnOnce(&mut PickContext<'_>) -> T) -> T {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ctx = PickContext::keyed(&mut rng, key);
    f(&mut ctx)
}
