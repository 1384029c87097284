//! `max_concurrent`, the gateway's admission queue, and priority tiers.
//!
//! The limits are enforced by `fulcrum_policy::select`, not by the
//! algorithms, so every algorithm must respect them; the simulator tracks
//! the highest in-flight count each instance ever reached.

use fulcrum_policy::{Algorithm, Priority};
use fulcrum_sim::{run, InstanceModel, LatencyModel, Stop, Workload};

#[test]
fn max_concurrent_is_never_exceeded_and_the_queue_absorbs_the_rest() {
    let insts: Vec<InstanceModel> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            InstanceModel::new(*n, LatencyModel::Uniform(5.0, 15.0))
                .capacity(2)
                .max_concurrent(4)
        })
        .collect();
    // 24 clients, 12 slots: 12 requests wait in the gateway at any time.
    let w = Workload {
        queue_max: 100,
        queue_timeout_ms: 60_000,
        ..Workload::new(24, Stop::AfterRequests(600))
    };
    for alg in Algorithm::ALL {
        let r = run(alg, &insts, &w);
        for i in &r.per_instance {
            assert!(
                i.max_in_flight <= 4,
                "{alg}: {} had {}",
                i.name,
                i.max_in_flight
            );
        }
        assert_eq!((r.served, r.failed), (600, 0), "{alg}");
        let q = r.gateway_queue;
        assert!(q.waited > 0 && q.max_len <= 12, "{alg}: {q:?}");
        assert_eq!(q.timed_out, 0, "{alg}");
    }
}

#[test]
fn a_short_queue_timeout_answers_503() {
    let slow = InstanceModel::new("a", LatencyModel::Fixed(1_000.0)).max_concurrent(1);
    let w = Workload {
        queue_max: 10,
        queue_timeout_ms: 100,
        ..Workload::new(3, Stop::AfterRequests(3))
    };
    let r = run(Algorithm::RoundRobin, &[slow], &w);
    assert_eq!((r.served, r.rejected), (1, 2));
    assert_eq!(r.gateway_queue.timed_out, 2);
    // The one that got in waited for nothing but its 1 s of service.
    assert_eq!(r.latency.max, 1_000.0);
}

#[test]
fn a_full_high_tier_spills_to_low() {
    let lat = LatencyModel::Fixed(20.0);
    let insts = [
        InstanceModel::new("high", lat)
            .priority(Priority::High)
            .max_concurrent(2)
            .capacity(2),
        InstanceModel::new("low", lat)
            .priority(Priority::Low)
            .capacity(8),
    ];
    for alg in Algorithm::ALL {
        let one = run(alg, &insts, &Workload::new(1, Stop::AfterRequests(500)));
        assert_eq!(one.instance("high").unwrap().requests, 500, "{alg}");
        assert_eq!(one.instance("low").unwrap().requests, 0, "{alg}");

        let eight = run(alg, &insts, &Workload::new(8, Stop::AfterRequests(4_000)));
        let (high, low) = (
            eight.instance("high").unwrap(),
            eight.instance("low").unwrap(),
        );
        assert!(
            high.max_in_flight <= 2,
            "{alg}: high had {}",
            high.max_in_flight
        );
        assert!(low.share > 0.5, "{alg}: low took {}", low.share);
        assert!(high.share > 0.2, "{alg}: high kept only {}", high.share);
        assert_eq!(
            (eight.served, eight.gateway_queue.waited),
            (4_000, 0),
            "{alg}"
        );
    }
}
