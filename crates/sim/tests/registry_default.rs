//! The decision behind `registry.default_algorithm` (docs/SIMULATION.md,
//! "registry_default"): on a registry pool's life — a service 20× slower
//! for 30 s, a newcomer registering midway — `response_time` keeps the
//! tail near an undisturbed pool's, counting rules do not, and dynamic
//! weights are too slow to help.

use fulcrum_policy::Algorithm;
use fulcrum_sim::scenarios::registry_default::{outcome, outcomes, Candidate, CANDIDATES};

fn find(alg: Algorithm, dw: Option<u64>) -> Candidate {
    *CANDIDATES
        .iter()
        .find(|c| c.algorithm == alg && c.dynamic_interval_ms == dw)
        .unwrap()
}

#[test]
fn response_time_keeps_the_tail_through_a_slow_service_and_least_calls_does_not() {
    let rt = outcome(1, find(Algorithm::ResponseTime, None));
    let lc = outcome(1, find(Algorithm::LeastCalls, None));
    // Log-normal median 30 ms, sigma 0.3: an undisturbed p99 of ~60 ms.
    assert!(rt.report.latency.p99 < 80.0, "{:?}", rt.report.latency);
    assert!(lc.report.latency.p99 > 1_000.0, "{:?}", lc.report.latency);
    assert!(rt.report.throughput() > 1.5 * lc.report.throughput());
    assert!(
        rt.to_slow * 10 < lc.to_slow,
        "{} vs {}",
        rt.to_slow,
        lc.to_slow
    );
}

#[test]
fn least_calls_ignores_dynamic_weights_and_they_react_too_slowly_to_save_the_tail() {
    let all = outcomes(1);
    let by = |alg, dw| all.iter().find(|o| o.candidate == find(alg, dw)).unwrap();
    let lc = by(Algorithm::LeastCalls, None);
    let lc_dw = &by(Algorithm::LeastCalls, Some(60_000)).report;
    assert_eq!(
        (lc_dw.served, lc_dw.latency, &lc_dw.per_instance),
        (lc.report.served, lc.report.latency, &lc.report.per_instance),
        "the same picks: least_calls reads call counts, not weights"
    );
    // Weights from measured latency (the platform's later rule) every 5 s:
    // better than counting, still seconds of tail.
    let wrr5 = by(Algorithm::WeightedRoundRobin, Some(5_000));
    assert!(
        wrr5.report.latency.p99 > 1_000.0,
        "{:?}",
        wrr5.report.latency
    );
    assert!(wrr5.report.latency.p99 < lc.report.latency.p99);
}

#[test]
fn a_newcomer_without_samples_gets_its_share_under_response_time_without_a_flood() {
    let rt = outcome(1, find(Algorithm::ResponseTime, None));
    // Five services after it registers: a fifth of the traffic is fair.
    assert!(
        (0.15..0.3).contains(&rt.newcomer_share),
        "{}",
        rt.newcomer_share
    );
    // About 180 req/s in all: its fair first second is ~36 requests.
    assert!(
        (10..80).contains(&rt.newcomer_first_second),
        "{}",
        rt.newcomer_first_second
    );
    assert!(rt.report.per_instance[4].max_in_flight <= 6);
}
