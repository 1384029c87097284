//! `dynamic_weights` in the simulator: three instances of capacities
//! 1:2:4 (a fixed 50 ms each) under 16 closed-loop clients, equal
//! configured weights, `weighted_round_robin` with a 5 s interval
//! (`scenarios::dynamic`, the table in docs/SIMULATION.md).

use fulcrum_policy::Algorithm;
use fulcrum_sim::scenarios::dynamic;

#[test]
fn weighted_round_robin_finds_the_capacities_settles_and_serves_more() {
    let (st, dy) = dynamic::compare(Algorithm::WeightedRoundRobin, 1);
    assert!(st.weights.is_empty());
    let w: Vec<&Vec<u32>> = dy.weights.iter().map(|(_, w)| w).collect();
    assert_eq!(w.len(), 12, "one per 5 s of the 60");
    // In capacity order from the 5th interval on (it is from the 3rd).
    for (k, x) in w.iter().enumerate().skip(4) {
        assert!(x[0] < x[1] && x[1] < x[2], "interval {}: {w:?}", k + 1);
    }
    // From the 5th on, no weight moves by 10 % or more in an interval
    // (the last larger move is the 1-slot instance's fall into the 4th).
    for (k, pair) in w.windows(2).enumerate().skip(3) {
        for (a, b) in pair[0].iter().zip(pair[1]) {
            let change = (f64::from(*b) - f64::from(*a)).abs() / f64::from(*a);
            assert!(change < 0.10, "interval {}: {w:?}", k + 2);
        }
    }
    // Near 1:2:4 at the end.
    let last = w[w.len() - 1];
    let r = |i: usize| f64::from(last[i]) / f64::from(last[0]);
    assert!(
        (1.6..2.6).contains(&r(1)) && (3.2..5.0).contains(&r(2)),
        "{last:?}"
    );
    // Equal weights cap the pool at 3 × the smallest's 20 req/s; dynamic
    // weights get near the 140 the capacities allow.
    assert!(st.throughput() < 65.0, "{}", st.throughput());
    assert!(
        dy.throughput() > 1.7 * st.throughput(),
        "{} vs {}",
        dy.throughput(),
        st.throughput()
    );
}

#[test]
fn every_weight_following_algorithm_gains_or_holds() {
    for alg in dynamic::ALGORITHMS {
        let (st, dy) = dynamic::compare(alg, 1);
        assert!(dy.throughput() >= 0.98 * st.throughput(), "{alg:?}");
        assert!(dy.failed == 0 && !dy.weights.is_empty(), "{alg:?}");
    }
}

#[test]
fn a_run_with_dynamic_weights_is_deterministic() {
    let a = dynamic::compare(Algorithm::Random, 7).1;
    assert_eq!(a, dynamic::compare(Algorithm::Random, 7).1);
}
