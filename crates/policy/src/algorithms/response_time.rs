//! `response_time`: peak-EWMA latency × (in-flight + 1), chosen by the
//! power of two choices — Finagle's and linkerd's "P2C + PeakEWMA".
//!
//! The cost of an instance is its latency estimate (see [`crate::ewma`]:
//! it jumps to any slower observation at once and decays back slowly)
//! times the requests it already has, divided by its success rate. Comparing two random candidates
//! instead of taking the global minimum avoids herding: when one instance
//! is "fastest", a global minimum sends it every request until its latency
//! catches up (the failure of naive least-time balancing, e.g. traefik
//! #12306); two random samples spread the load while still avoiding the slow.

use super::scan::two_distinct;
use crate::candidate::{Balancer, Candidate, PickContext};

#[derive(Debug, Default, Clone, Copy)]
pub struct ResponseTime;

/// Most an error rate can multiply the cost by.
pub const MAX_ERROR_PENALTY: f64 = 10.0;

/// The cost P2C compares: latency × (in-flight + 1), divided by the share
/// of tries that succeed, so an instance answering fast *errors* does not
/// look like the fastest (up to [`MAX_ERROR_PENALTY`]×).
pub fn cost(c: &Candidate) -> f64 {
    let ok = (1.0 - c.error_rate.clamp(0.0, 1.0)).max(1.0 / MAX_ERROR_PENALTY);
    c.latency_ms.max(0.0) * f64::from(c.in_flight + 1) / ok
}

impl Balancer for ResponseTime {
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize {
        if cands.len() == 1 {
            return 0;
        }
        let (a, b) = two_distinct(cands.len(), ctx.rng);
        if cost(&cands[b]) < cost(&cands[a]) {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::testutil::with_ctx;

    fn c(slot: usize, latency_ms: f64, in_flight: u32) -> Candidate {
        Candidate {
            latency_ms,
            ..Candidate::new(slot, 1, in_flight)
        }
    }

    #[test]
    fn of_two_it_takes_the_cheaper() {
        let cands = [c(0, 200.0, 0), c(1, 10.0, 0)];
        with_ctx(1, None, |ctx| {
            assert!((0..50).all(|_| ResponseTime.pick(&cands, ctx) == 1))
        });
    }

    #[test]
    fn a_fast_instance_with_a_queue_loses_to_an_idle_slower_one() {
        // 10 ms × 30 in flight = 310 > 100 ms × 1.
        let cands = [c(0, 10.0, 30), c(1, 100.0, 0)];
        with_ctx(1, None, |ctx| assert_eq!(ResponseTime.pick(&cands, ctx), 1));
    }

    proptest::proptest! {
        #[test]
        fn never_returns_the_costlier_of_its_two_samples(
            loads in proptest::collection::vec((0.0f64..500.0, 0u32..20), 2..10),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let cands: Vec<Candidate> = loads.iter().enumerate().map(|(s, &(l, f))| c(s, l, f)).collect();
            let (a, b) = two_distinct(cands.len(), &mut fastrand::Rng::with_seed(seed));
            let i = with_ctx(seed, None, |ctx| ResponseTime.pick(&cands, ctx));
            proptest::prop_assert!(i == a || i == b);
            let other = if i == a { b } else { a };
            proptest::prop_assert!(cost(&cands[i]) <= cost(&cands[other]));
        }
    }

    #[test]
    fn no_herding_the_cheapest_does_not_take_everything() {
        // A global minimum would send all to slot 0; P2C sends the costliest
        // nothing and the cheapest only its share of the pairs it is in.
        let cands: Vec<Candidate> = (0..4).map(|s| c(s, 10.0 + s as f64, 0)).collect();
        let mut seen = [0; 4];
        with_ctx(9, None, |ctx| {
            for _ in 0..1200 {
                seen[ResponseTime.pick(&cands, ctx)] += 1;
            }
        });
        assert_eq!(seen[3], 0, "{seen:?}");
        assert!(
            seen[0] < 1200 * 6 / 10 && seen[1] > 0 && seen[2] > 0,
            "{seen:?}"
        );
    }

    #[test]
    fn fast_errors_do_not_make_an_instance_look_fast() {
        let failing = Candidate {
            error_rate: 0.9,
            ..c(0, 5.0, 0)
        };
        let healthy = c(1, 20.0, 0);
        assert!(cost(&failing) > cost(&healthy));
    }
}
