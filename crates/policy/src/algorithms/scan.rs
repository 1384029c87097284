//! Two scans several algorithms share: the minimum under a comparison with
//! rotating tie-breaks ([`rotating_min`], for `least_connections` and
//! `least_calls`) and two distinct random positions ([`two_distinct`], the
//! samples of the power of two choices in `power_of_two`,
//! `response_time` and `resource_based`).

use crate::candidate::Candidate;
use crate::rng::RandomSource;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The position of a minimum of `cands` under `less`, scanning from a
/// rotating `offset` so that ties go round instead of always to the first.
pub(crate) fn rotating_min(
    cands: &[Candidate],
    offset: &AtomicUsize,
    less: impl Fn(&Candidate, &Candidate) -> bool,
) -> usize {
    let n = cands.len();
    let start = offset.fetch_add(1, Ordering::Relaxed) % n;
    let mut best = start;
    for k in 1..n {
        let i = (start + k) % n;
        if less(&cands[i], &cands[best]) {
            best = i;
        }
    }
    best
}

/// Two distinct random positions in `0..n` (n ≥ 2).
pub(crate) fn two_distinct(n: usize, rng: &mut dyn RandomSource) -> (usize, usize) {
    let a = rng.below(n as u64) as usize;
    let mut b = rng.below(n as u64 - 1) as usize;
    if b >= a {
        b += 1;
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_distinct_never_repeats() {
        let mut rng = fastrand::Rng::with_seed(5);
        for n in 2..10 {
            for _ in 0..200 {
                let (a, b) = two_distinct(n, &mut rng);
                assert!(a != b && a < n && b < n);
            }
        }
    }
}
