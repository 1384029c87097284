//! `resource_based`: the voice-assistant design's weighted score — the lower
//! of two randomly sampled instances wins (power of two choices over the
//! score, so stale load reports cannot make every request herd onto one
//! instance):
//!
//! ```text
//! score = 0.30·cpu + 0.25·memory + 0.20·connections/max_concurrent
//!       + 0.15·latency/slowest + 0.10·error_rate
//! score × 0.8 for priority high, × 1.2 for low (and backup)
//! ```
//!
//! cpu and memory come from the instances' ORCA load reports
//! (`endpoint-load-metrics`); an instance without a fresh report counts as
//! half loaded (0.5), so it neither wins nor loses by silence. Without a
//! `max_concurrent`, connections are taken relative to the busiest
//! candidate. The priority factors order instances *within* a tier only:
//! tiers themselves are applied first, by `select`, so with one tier per
//! priority they have no effect.

use super::scan::two_distinct;
use crate::candidate::{Balancer, Candidate, PickContext};
use crate::priority::Priority;

#[derive(Debug, Default)]
pub struct ResourceBased;

/// Assumed utilisation of an instance that has not reported one.
pub const UNKNOWN_UTILISATION: f64 = 0.5;

/// The score of `c` among candidates whose slowest latency is `max_latency`
/// and busiest in-flight count is `max_in_flight`.
pub fn score(c: &Candidate, max_latency: f64, max_in_flight: u32) -> f64 {
    let cpu = c.cpu.unwrap_or(UNKNOWN_UTILISATION).clamp(0.0, 1.0);
    let mem = c.mem.unwrap_or(UNKNOWN_UTILISATION).clamp(0.0, 1.0);
    let conn = match c.max_concurrent {
        Some(m) if m > 0 => f64::from(c.in_flight) / f64::from(m),
        _ => f64::from(c.in_flight) / f64::from(max_in_flight.max(1)),
    }
    .clamp(0.0, 1.0);
    let lat = if max_latency > 0.0 {
        (c.latency_ms / max_latency).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let err = c.error_rate.clamp(0.0, 1.0);
    let base = 0.30 * cpu + 0.25 * mem + 0.20 * conn + 0.15 * lat + 0.10 * err;
    base * match c.priority {
        Priority::High => 0.8,
        Priority::Normal => 1.0,
        Priority::Low | Priority::Backup => 1.2,
    }
}

impl Balancer for ResourceBased {
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize {
        let max_latency = cands.iter().map(|c| c.latency_ms).fold(0.0, f64::max);
        let max_in_flight = cands.iter().map(|c| c.in_flight).max().unwrap_or(0);
        if cands.len() == 1 {
            return 0;
        }
        // The lower score of two random candidates: load reports arrive
        // with responses, so between two reports every request would go to
        // the one instance that last looked idle if we took the global
        // minimum (herding). Ties go to the first sample.
        let (a, b) = two_distinct(cands.len(), ctx.rng);
        if score(&cands[b], max_latency, max_in_flight)
            < score(&cands[a], max_latency, max_in_flight)
        {
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

    fn c(slot: usize) -> Candidate {
        Candidate {
            cpu: Some(0.5),
            mem: Some(0.5),
            latency_ms: 100.0,
            ..Candidate::new(slot, 1, 0)
        }
    }

    #[test]
    fn the_seeds_weights_are_applied() {
        let x = Candidate {
            cpu: Some(1.0),
            mem: Some(0.0),
            latency_ms: 0.0,
            ..Candidate::new(0, 1, 0)
        };
        assert!((score(&x, 100.0, 0) - 0.30).abs() < 1e-9);
        let x = Candidate {
            cpu: Some(0.0),
            mem: Some(1.0),
            ..x
        };
        assert!((score(&x, 100.0, 0) - 0.25).abs() < 1e-9);
        let x = Candidate {
            mem: Some(0.0),
            in_flight: 5,
            max_concurrent: Some(10),
            ..x
        };
        assert!((score(&x, 100.0, 5) - 0.10).abs() < 1e-9);
        let x = Candidate {
            in_flight: 0,
            latency_ms: 50.0,
            ..x
        };
        assert!((score(&x, 100.0, 0) - 0.075).abs() < 1e-9);
        let x = Candidate {
            latency_ms: 0.0,
            error_rate: 1.0,
            ..x
        };
        assert!((score(&x, 100.0, 0) - 0.10).abs() < 1e-9);
        let high = Candidate {
            priority: Priority::High,
            ..x
        };
        let low = Candidate {
            priority: Priority::Low,
            ..x
        };
        assert!((score(&high, 100.0, 0) - 0.08).abs() < 1e-9);
        assert!((score(&low, 100.0, 0) - 0.12).abs() < 1e-9);
    }

    proptest::proptest! {
        #[test]
        fn never_returns_the_higher_scored_of_its_two_samples(
            xs in proptest::collection::vec(
                (proptest::option::of(0.0f64..1.0), proptest::option::of(0.0f64..1.0), 0u32..10, 0.0f64..300.0, 0.0f64..1.0, 0usize..4),
                1..8,
            ),
        ) {
            let prios = [Priority::High, Priority::Normal, Priority::Low, Priority::Backup];
            let cands: Vec<Candidate> = xs.iter().enumerate().map(|(s, &(cpu, mem, f, lat, err, p))| Candidate {
                cpu, mem, latency_ms: lat, error_rate: err, priority: prios[p], max_concurrent: Some(10),
                ..Candidate::new(s, 1, f)
            }).collect();
            let max_lat = cands.iter().map(|c| c.latency_ms).fold(0.0, f64::max);
            let max_if = cands.iter().map(|c| c.in_flight).max().unwrap();
            let seed = cands.len() as u64;
            let (a, b) = if cands.len() > 1 { two_distinct(cands.len(), &mut fastrand::Rng::with_seed(seed)) } else { (0, 0) };
            let i = with_ctx(seed, None, |ctx| ResourceBased.pick(&cands, ctx));
            proptest::prop_assert!(i == a || i == b);
            let other = if i == a { b } else { a };
            proptest::prop_assert!(score(&cands[i], max_lat, max_if) <= score(&cands[other], max_lat, max_if) + 1e-12);
        }
    }

    #[test]
    fn lower_cpu_wins_and_priority_tips_a_close_call() {
        let busy = Candidate {
            cpu: Some(0.9),
            ..c(0)
        };
        let idle = Candidate {
            cpu: Some(0.1),
            ..c(1)
        };
        with_ctx(1, None, |ctx| {
            assert_eq!(ResourceBased.pick(&[busy, idle], ctx), 1)
        });
        // Same load: the high-priority instance scores 0.8× and wins.
        let normal = c(0);
        let high = Candidate {
            priority: Priority::High,
            ..c(1)
        };
        with_ctx(1, None, |ctx| {
            let rb = ResourceBased;
            assert!((0..4).all(|_| rb.pick(&[normal, high], ctx) == 1));
        });
    }
}
