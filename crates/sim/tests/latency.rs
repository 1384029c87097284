//! Latency under a degraded instance, and every algorithm end to end.
//!
//! The degraded test is the reason latency-aware balancing exists: one
//! instance out of four becomes 20× slower, and an algorithm that keeps
//! sending it a quarter of the traffic parks most clients behind it.

use fulcrum_policy::Algorithm;
use fulcrum_sim::scenarios::degraded;
use fulcrum_sim::{run, InstanceModel, LatencyModel, Stop, Workload};

#[test]
fn response_time_avoids_the_degraded_instance() {
    // 4 instances, `d` at 200 ms vs 10 ms, 16 closed-loop clients, 60 s.
    for seed in [1, 2, 3] {
        let s = degraded(seed);
        let rr = run(Algorithm::RoundRobin, &s.instances, &s.workload);
        let rt = run(Algorithm::ResponseTime, &s.instances, &s.workload);
        let lc = run(Algorithm::LeastConnections, &s.instances, &s.workload);
        // Better than the best load-only algorithm too, not just round robin:
        // the slow instance's requests are what make p99.
        assert!(
            rt.latency.p99 <= 0.3 * lc.latency.p99,
            "seed {seed}: response_time p99 {} ms vs least_connections {} ms",
            rt.latency.p99,
            lc.latency.p99
        );
        assert!(
            rt.latency.p99 <= 0.3 * rr.latency.p99,
            "seed {seed}: response_time p99 {} ms vs round_robin {} ms",
            rt.latency.p99,
            rr.latency.p99
        );
        assert!(
            rt.served > rr.served,
            "seed {seed}: served {} vs {}",
            rt.served,
            rr.served
        );
        // Round robin gives the slow instance its quarter regardless...
        let d = rr.instance("d").unwrap().share;
        assert!((d - 0.25).abs() < 0.01, "round_robin share of d {d}");
        // ...response_time only the occasional probe.
        let d = rt.instance("d").unwrap().share;
        assert!(d < 0.02, "response_time share of d {d}");
        assert_eq!(rr.failed + rt.failed, 0);
    }
}

#[test]
fn every_algorithm_runs_the_degraded_workload() {
    let s = degraded(7);
    for alg in Algorithm::ALL {
        let r = run(alg, &s.instances, &s.workload);
        assert!(r.served > 0, "{alg}: nothing served");
        assert_eq!(r.failed, 0, "{alg}");
        let sent: u64 = r.per_instance.iter().map(|i| i.requests).sum();
        assert_eq!(sent, r.served, "{alg}: every request sent was answered");
        assert!(r.latency.p50 >= 10.0 && r.latency.p999 >= r.latency.p99);
    }
}

#[test]
fn a_run_is_deterministic_for_its_seed() {
    let s = degraded(11);
    for alg in [
        Algorithm::Random,
        Algorithm::PowerOfTwo,
        Algorithm::ResponseTime,
    ] {
        assert_eq!(
            run(alg, &s.instances, &s.workload),
            run(alg, &s.instances, &s.workload),
            "{alg}"
        );
    }
    let other = degraded(12);
    assert_ne!(
        run(Algorithm::Random, &s.instances, &s.workload).per_instance,
        run(Algorithm::Random, &other.instances, &other.workload).per_instance,
        "the seed is used"
    );
}

#[test]
fn a_pool_entirely_down_fails_fast_then_recovers() {
    let lat = LatencyModel::Fixed(10.0);
    let insts: Vec<InstanceModel> = ["a", "b"]
        .iter()
        .map(|n| InstanceModel::new(*n, lat).down_between(1_000, 2_000))
        .collect();
    let w = Workload {
        fail_pause_ms: 100.0,
        ..Workload::new(4, Stop::AfterMs(3_000))
    };
    for alg in Algorithm::ALL {
        let r = run(alg, &insts, &w);
        // 4 clients × 10 failures 100 ms apart during the outage.
        assert_eq!(r.rejected, 40, "{alg}");
        assert_eq!(r.failed, r.rejected, "{alg}");
        // Up for 2 of the 3 seconds: 4 clients, 2 instances of 1 slot, 20 ms a round.
        assert!(r.served > 300, "{alg}: {}", r.served);
        assert_eq!(r.gateway_queue.waited, 0, "{alg}: no limit, no queue");
    }
}
