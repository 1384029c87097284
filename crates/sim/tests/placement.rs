//! Where requests land: weighted shares and consistent hashing.

use fulcrum_policy::Algorithm;
use fulcrum_sim::{run, run_with, InstanceModel, LatencyModel, Stop, Workload};
use std::collections::BTreeMap;

fn weighted() -> Vec<InstanceModel> {
    [("w3", 3), ("w2", 2), ("w1", 1)]
        .iter()
        .map(|&(n, w)| {
            InstanceModel::new(n, LatencyModel::Fixed(10.0))
                .weight(w)
                .capacity(8)
        })
        .collect()
}

fn shares(alg: Algorithm, requests: u64) -> Vec<f64> {
    let r = run(
        alg,
        &weighted(),
        &Workload::new(8, Stop::AfterRequests(requests)),
    );
    assert_eq!(r.served, requests);
    r.per_instance.iter().map(|i| i.share * 100.0).collect()
}

#[test]
fn weights_3_2_1_give_50_33_17_percent() {
    let exact = [50.0, 100.0 / 3.0, 100.0 / 6.0];
    let wrr = shares(Algorithm::WeightedRoundRobin, 6_000);
    let random = shares(Algorithm::Random, 30_000);
    for i in 0..3 {
        assert!((wrr[i] - exact[i]).abs() <= 1.0, "wrr {wrr:?}");
        assert!((random[i] - exact[i]).abs() <= 2.0, "random {random:?}");
    }
    // Plain round robin ignores weights: the check above can fail.
    let rr = shares(Algorithm::RoundRobin, 6_000);
    assert!((rr[0] - 100.0 / 3.0).abs() <= 1.0, "rr {rr:?}");
}

/// Key → instances it was sent to, per phase (before / during / after the
/// outage of `c`).
type Placement = [BTreeMap<usize, Vec<usize>>; 3];

#[test]
fn consistent_hash_keeps_keys_in_place_and_moves_only_the_lost_ones() {
    // `c` is down from 10 s to 20 s.
    let insts: Vec<InstanceModel> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            let i = InstanceModel::new(*n, LatencyModel::Fixed(1.0));
            if *n == "c" {
                i.down_between(10_000, 20_000)
            } else {
                i
            }
        })
        .collect();
    // 200 devices, one key each, each sending once a second, 5 ms apart:
    // one request in flight at a time, far below the bounded-load cap, so
    // placement is pure consistent hashing (heavier light load is covered by
    // regressions.rs).
    let w = Workload {
        think_ms: 999.0,
        ramp_ms: 1_000.0,
        keys: Some(200),
        ..Workload::new(200, Stop::AfterMs(30_000))
    };
    let mut seen: Placement = Default::default();
    let r = run_with(Algorithm::ConsistentHash, &insts, &w, &mut |d| {
        let phase = usize::from(d.at_ms >= 10_000.0) + usize::from(d.at_ms >= 20_000.0);
        let on = seen[phase].entry(d.key.unwrap()).or_default();
        if !on.contains(&d.instance) {
            on.push(d.instance);
        }
    });
    assert_eq!(r.failed, 0);
    for (phase, map) in seen.iter().enumerate() {
        assert_eq!(map.len(), 200, "phase {phase}: every key was sent");
        for (key, on) in map {
            assert_eq!(on.len(), 1, "phase {phase}: key {key} went to {on:?}");
        }
    }
    let owner = |phase: usize, key: usize| seen[phase][&key][0];
    let mut keys_per_instance = [0usize; 4];
    for key in 0..200 {
        keys_per_instance[owner(0, key)] += 1;
        assert_eq!(owner(0, key), owner(2, key), "key {key} back where it was");
        if owner(0, key) == 2 {
            assert_ne!(owner(1, key), 2, "key {key} left the down instance");
        } else {
            assert_eq!(owner(0, key), owner(1, key), "key {key} moved needlessly");
        }
    }
    let (min, max) = (
        keys_per_instance.iter().min().unwrap(),
        keys_per_instance.iter().max().unwrap(),
    );
    assert!(*min > 0 && *max <= 2 * *min, "{keys_per_instance:?}");
}
