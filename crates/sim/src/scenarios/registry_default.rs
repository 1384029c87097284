//! The `registry_default` scenario: which algorithm a pool formed by
//! registration should get when the config says nothing
//! (`registry.default_algorithm`), on the video-analysis platform's
//! workload — one task type served by the YOLO services that registered
//! for it, cameras sending frames in a closed loop — through a registry
//! pool's life: one service slows down 20× for half a minute (a GPU
//! falling back to the CPU) and recovers, and a new service registers
//! midway, with no latency measured yet.
//!
//! The candidates: `least_calls` (the seed's rule, the default before),
//! `least_calls` with `dynamic_weights` (which it ignores: it reads call
//! counts, not weights), `weighted_round_robin` with `dynamic_weights`
//! (the shape of the platform's later rule, weights from measured response
//! time) at the default 60 s interval and at 5 s, `response_time`, and
//! `least_connections` for reference.
//!
//! A service that registers at `t` is modelled as down until `t`: its call
//! count is held at the pool's minimum meanwhile, as the data plane starts
//! a newcomer's count at its pool's minimum, and it has no latency sample,
//! as a newcomer has none (`response_time` starts it at the policy's
//! initial estimate, decayed by the time it joins).

use crate::engine::run_with;
use crate::model::{InstanceModel, LatencyModel, Stop, Workload};
use crate::report::{labelled_table, Report};
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::Algorithm;
use std::fmt::Write as _;

/// Name of the scenario on the command line.
pub const NAME: &str = "registry_default";
/// The slow service (its index) and its slow window, ms.
pub const SLOW: usize = 2;
pub const SLOW_FROM_MS: u64 = 10_000;
pub const SLOW_UNTIL_MS: u64 = 40_000;
/// How much slower it is meanwhile.
pub const SLOW_FACTOR: f64 = 20.0;
/// The newcomer (its index) and when it registers, ms.
pub const NEWCOMER: usize = 4;
pub const JOINS_AT_MS: u64 = 30_000;

/// One candidate for the default: an algorithm, with or without dynamic
/// weights (their interval, ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub algorithm: Algorithm,
    pub dynamic_interval_ms: Option<u64>,
}

impl Candidate {
    const fn new(algorithm: Algorithm, dynamic_interval_ms: Option<u64>) -> Self {
        Self {
            algorithm,
            dynamic_interval_ms,
        }
    }

    /// The row's label: the algorithm, and `+ dw N s` with dynamic weights.
    pub fn label(&self) -> String {
        match self.dynamic_interval_ms {
            None => self.algorithm.name().to_string(),
            Some(ms) => format!("{} + dw {} s", self.algorithm.name(), ms / 1000),
        }
    }
}

/// The candidates, in the order of the table.
pub const CANDIDATES: [Candidate; 6] = [
    Candidate::new(Algorithm::LeastCalls, None),
    Candidate::new(Algorithm::LeastCalls, Some(60_000)),
    Candidate::new(Algorithm::WeightedRoundRobin, Some(60_000)),
    Candidate::new(Algorithm::WeightedRoundRobin, Some(5_000)),
    Candidate::new(Algorithm::ResponseTime, None),
    Candidate::new(Algorithm::LeastConnections, None),
];

/// Five YOLO services of one task type, 4 GPU slots each, log-normal
/// service time with median 30 ms (the demo's `vision` services);
/// `yolo-3` 20× slower from 10 s to 40 s; `yolo-5` registers at 30 s.
/// Registrations name no weight and no `max_concurrent`, like the
/// platform's.
pub fn instances() -> Vec<InstanceModel> {
    let lat = LatencyModel::LogNormal {
        median_ms: 30.0,
        sigma: 0.3,
    };
    (1..=5)
        .map(|n| {
            let m = InstanceModel::new(format!("yolo-{n}"), lat).capacity(4);
            match n - 1 {
                SLOW => m.slow_between(SLOW_FROM_MS, SLOW_UNTIL_MS, SLOW_FACTOR),
                NEWCOMER => m.down_between(0, JOINS_AT_MS),
                _ => m,
            }
        })
        .collect()
}

/// 24 cameras for 60 s, each sending its next frame 100 ms after the last
/// answer (about 40 % of the four services' capacity).
pub fn workload(seed: u64, c: Candidate) -> Workload {
    Workload {
        seed,
        think_ms: 100.0,
        ramp_ms: 1_000.0,
        dynamic_weights: c.dynamic_interval_ms.map(|interval_ms| DynamicWeights {
            interval_ms,
            ..DynamicWeights::default()
        }),
        ..Workload::new(24, Stop::AfterMs(super::DURATION_MS))
    }
}

/// What one candidate did: the run's report, and where requests went
/// around the two events.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub candidate: Candidate,
    pub report: Report,
    /// Requests sent to the slow service while it was slow.
    pub to_slow: u64,
    /// Of the requests sent after the newcomer registered, its share.
    pub newcomer_share: f64,
    /// Requests sent to the newcomer in its first second.
    pub newcomer_first_second: u64,
}

/// Runs one candidate.
pub fn outcome(seed: u64, c: Candidate) -> Outcome {
    let pool = instances();
    let (mut to_slow, mut after, mut to_new, mut first) = (0, 0u64, 0u64, 0);
    let report = run_with(c.algorithm, &pool, &workload(seed, c), &mut |d| {
        let at = d.at_ms;
        if d.instance == SLOW && (SLOW_FROM_MS as f64..SLOW_UNTIL_MS as f64).contains(&at) {
            to_slow += 1;
        }
        if at >= JOINS_AT_MS as f64 {
            after += 1;
            if d.instance == NEWCOMER {
                to_new += 1;
                first += u64::from(at < (JOINS_AT_MS + 1_000) as f64);
            }
        }
    });
    Outcome {
        candidate: c,
        report,
        to_slow,
        newcomer_share: if after > 0 {
            to_new as f64 / after as f64
        } else {
            0.0
        },
        newcomer_first_second: first,
    }
}

/// Every candidate, in [`CANDIDATES`] order.
pub fn outcomes(seed: u64) -> Vec<Outcome> {
    CANDIDATES.iter().map(|&c| outcome(seed, c)).collect()
}

/// The Markdown section: the usual table, then the two events.
pub fn markdown(seed: u64) -> String {
    let all = outcomes(seed);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {NAME}\n\nOne task type's registered services: five YOLO instances, 4 slots \
         each, log-normal median 30 ms, no weight or `max_concurrent` in their \
         registrations; `yolo-3` is 20× slower from 10 s to 40 s; `yolo-5` registers at \
         30 s. 24 cameras, each sending a frame 100 ms after its last answer. Rows with \
         `+ dw` run `dynamic_weights` at that interval.\n"
    );
    let labels: Vec<String> = all.iter().map(|o| o.candidate.label()).collect();
    let reports: Vec<Report> = all.iter().map(|o| o.report.clone()).collect();
    out.push_str(&labelled_table(&labels, &reports));
    let _ = writeln!(
        out,
        "\n| candidate | requests to `yolo-3` while slow | `yolo-5`'s share after it registered \
         | `yolo-5`'s requests in its first second | `yolo-5` max in flight |\n|---|--:|--:|--:|--:|"
    );
    for (o, label) in all.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "| {label} | {} | {:.1} % | {} | {} |",
            o.to_slow,
            o.newcomer_share * 100.0,
            o.newcomer_first_second,
            o.report.per_instance[NEWCOMER].max_in_flight,
        );
    }
    out
}
