//! The `dynamic_weights` scenario: three instances whose capacities are
//! 1, 2 and 4 slots (a fixed 50 ms each, as the loopback test's mocks),
//! equal configured weights, 16 closed-loop clients (more than the 7
//! slots), balanced by each weight-following algorithm with and without
//! `dynamic_weights` (interval 5 s): throughput, latency, shares, and the
//! weights after each interval.

use crate::engine::run;
use crate::model::{InstanceModel, LatencyModel, Stop, Workload};
use crate::report::{labelled_table, Report};
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::Algorithm;
use std::fmt::Write as _;

/// Name of the scenario on the command line.
pub const NAME: &str = "dynamic_weights";
/// The interval of the scenario's `dynamic_weights`.
pub const INTERVAL_MS: u64 = 5_000;
/// The algorithms that follow weights and that the scenario compares.
pub const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::WeightedRoundRobin,
    Algorithm::LeastConnections,
    Algorithm::Random,
    Algorithm::PowerOfTwo,
];

/// The pool: capacities 1, 2 and 4, 50 ms, weights 1.
pub fn instances() -> Vec<InstanceModel> {
    [("cap1", 1), ("cap2", 2), ("cap4", 4)]
        .into_iter()
        .map(|(n, c)| InstanceModel::new(n, LatencyModel::Fixed(50.0)).capacity(c))
        .collect()
}

/// 16 clients for 60 s, with dynamic weights when `dynamic`.
pub fn workload(seed: u64, dynamic: bool) -> Workload {
    Workload {
        seed,
        dynamic_weights: dynamic.then_some(DynamicWeights {
            interval_ms: INTERVAL_MS,
            ..DynamicWeights::default()
        }),
        ..Workload::new(16, Stop::AfterMs(super::DURATION_MS))
    }
}

/// (static, dynamic) reports of `alg`.
pub fn compare(alg: Algorithm, seed: u64) -> (Report, Report) {
    let pool = instances();
    (
        run(alg, &pool, &workload(seed, false)),
        run(alg, &pool, &workload(seed, true)),
    )
}

/// The Markdown section: the comparison, then the weights per interval.
pub fn markdown(seed: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {NAME}\n\nCapacities 1, 2 and 4 slots, a fixed 50 ms each, configured weights \
         all 1; 16 clients (more than the 7 slots). Each weight-following algorithm \
         without, then with `dynamic_weights: {{ interval: 5s }}` (rows marked +dw).\n"
    );
    let mut names = vec![];
    let mut reports = vec![];
    let mut histories = vec![];
    for alg in ALGORITHMS {
        let (st, dy) = compare(alg, seed);
        histories.push((alg, dy.weights.clone()));
        names.extend([alg.name().to_string(), format!("{} +dw", alg.name())]);
        reports.extend([st, dy]);
    }
    // Each row's algorithm cell says whether it had dynamic weights.
    out.push_str(&labelled_table(&names, &reports));
    weights_table(&mut out, &histories);
    out
}

/// The weights after each interval: (time ms, weights).
type History = Vec<(u64, Vec<u32>)>;

/// The weights after each interval, one column per algorithm.
fn weights_table(out: &mut String, histories: &[(Algorithm, History)]) {
    let _ = writeln!(
        out,
        "\nDynamic weights (cap1 / cap2 / cap4) after each {} s interval:\n",
        INTERVAL_MS / 1000
    );
    let _ = write!(out, "| after |");
    for (alg, _) in histories {
        let _ = write!(out, " {} |", alg.name());
    }
    let _ = writeln!(out, "\n|--:|{}", "---|".repeat(histories.len()));
    let intervals = histories.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    for k in 0..intervals {
        let at = histories[0].1.get(k).map_or(0, |(t, _)| *t);
        let _ = write!(out, "| {} s |", at / 1000);
        for (_, h) in histories {
            let w = h.get(k).map_or_else(String::new, |(_, w)| {
                w.iter().map(u32::to_string).collect::<Vec<_>>().join(" / ")
            });
            let _ = write!(out, " {w} |");
        }
        let _ = writeln!(out);
    }
}
