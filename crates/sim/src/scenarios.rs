//! Named scenarios on which the `fulcrum-sim` binary compares every
//! algorithm, each isolating one property a pool can have: one degraded
//! instance, unequal capacities, configured weights, a priority tier with a
//! concurrency limit, an instance that fails some of its requests, an
//! outage under load, many keyed devices at light load.
//!
//! They are plain data so tests and benchmarks can reuse them; each runs 60
//! virtual seconds.

pub mod classes;
pub mod dynamic;
pub mod limits;
pub mod registry_default;

use crate::engine::run;
use crate::model::{InstanceModel, LatencyModel, Stop, Workload};
use crate::report::{markdown_table, Report};
use fulcrum_policy::{Algorithm, Priority};
use std::fmt::Write as _;

/// Virtual length of every scenario.
pub const DURATION_MS: u64 = 60_000;

/// A pool and the traffic offered to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: &'static str,
    /// What it shows, one or two sentences.
    pub about: &'static str,
    pub instances: Vec<InstanceModel>,
    pub workload: Workload,
}

/// The scenario names, in the order [`all`] returns them.
pub const NAMES: [&str; 7] = [
    "degraded",
    "heterogeneous",
    "weighted",
    "spill",
    "flaky",
    "outage",
    "devices",
];

/// `clients` clients for 60 s, each with its own hash key (as devices would
/// be), so `consistent_hash` hashes rather than falling back to P2C.
fn workload(clients: usize, seed: u64) -> Workload {
    Workload {
        seed,
        keys: Some(clients),
        ..Workload::new(clients, Stop::AfterMs(DURATION_MS))
    }
}

/// Four instances with 4 slots each; `d` is 20× slower (200 ms vs 10 ms).
pub fn degraded(seed: u64) -> Scenario {
    let fast = |n: &str| InstanceModel::new(n, LatencyModel::Fixed(10.0)).capacity(4);
    Scenario {
        name: "degraded",
        about: "Four instances with 4 slots each; `d` answers in 200 ms instead of 10 ms. \
                16 closed-loop clients.",
        instances: vec![
            fast("a"),
            fast("b"),
            fast("c"),
            InstanceModel::new("d", LatencyModel::Fixed(200.0)).capacity(4),
        ],
        workload: workload(16, seed),
    }
}

/// Equal latency, capacities 1, 2, 4 and 8, weights left at 1.
pub fn heterogeneous(seed: u64) -> Scenario {
    let lat = LatencyModel::LogNormal {
        median_ms: 40.0,
        sigma: 0.3,
    };
    Scenario {
        name: "heterogeneous",
        about: "Same service time (log-normal, median 40 ms), capacities 1, 2, 4 and 8 slots, \
                all weights 1 (the gateway is not told). 12 clients: fewer than the 15 slots.",
        instances: [("cap1", 1), ("cap2", 2), ("cap4", 4), ("cap8", 8)]
            .into_iter()
            .map(|(n, c)| InstanceModel::new(n, lat).capacity(c))
            .collect(),
        workload: workload(12, seed),
    }
}

/// Weights 3:2:1 matching capacities 3:2:1.
pub fn weighted(seed: u64) -> Scenario {
    let lat = LatencyModel::LogNormal {
        median_ms: 40.0,
        sigma: 0.3,
    };
    Scenario {
        name: "weighted",
        about: "Weights 3:2:1 that match capacities of 3, 2 and 1 slots; service time \
                log-normal, median 40 ms. 6 clients: exactly the 6 slots.",
        instances: [("w3", 3), ("w2", 2), ("w1", 1)]
            .into_iter()
            .map(|(n, w)| InstanceModel::new(n, lat).weight(w).capacity(w as usize))
            .collect(),
        workload: workload(6, seed),
    }
}

/// A `high` instance limited to 2 in flight, a `low` one to take the rest.
pub fn spill(seed: u64) -> Scenario {
    let lat = LatencyModel::Fixed(20.0);
    Scenario {
        name: "spill",
        about: "`high` (priority high, max_concurrent 2, 2 slots) and `low` (priority low, \
                8 slots), 20 ms each. 8 clients: the high tier fills and spills.",
        instances: vec![
            InstanceModel::new("high", lat)
                .priority(Priority::High)
                .max_concurrent(2)
                .capacity(2),
            InstanceModel::new("low", lat)
                .priority(Priority::Low)
                .capacity(8),
        ],
        workload: workload(8, seed),
    }
}

/// One instance out of four fails 20 % of its requests.
pub fn flaky(seed: u64) -> Scenario {
    let lat = LatencyModel::LogNormal {
        median_ms: 30.0,
        sigma: 0.3,
    };
    let inst = |n: &str| InstanceModel::new(n, lat).capacity(4);
    Scenario {
        name: "flaky",
        about: "Four equal instances (4 slots, log-normal median 30 ms); `d` answers 20 % \
                of its requests with an error, as fast as the others. 8 clients.",
        instances: vec![inst("a"), inst("b"), inst("c"), inst("d").error_rate(0.2)],
        workload: workload(8, seed),
    }
}

/// Four equal instances; `c` is down from 20 s to 40 s, under load.
pub fn outage(seed: u64) -> Scenario {
    let lat = LatencyModel::LogNormal {
        median_ms: 20.0,
        sigma: 0.3,
    };
    let inst = |n: &str| InstanceModel::new(n, lat).capacity(4);
    Scenario {
        name: "outage",
        about: "Four equal instances (4 slots, log-normal median 20 ms); `c` is down from 20 s \
                to 40 s, then comes back. 12 clients (75 % of the 16 slots).",
        instances: vec![
            inst("a"),
            inst("b"),
            inst("c").down_between(20_000, 40_000),
            inst("d"),
        ],
        workload: workload(12, seed),
    }
}

/// 200 devices with their own key, each sending once a second; `c` is down
/// from 20 s to 40 s.
pub fn devices(seed: u64) -> Scenario {
    let lat = LatencyModel::LogNormal {
        median_ms: 10.0,
        sigma: 0.5,
    };
    let inst = |n: &str| InstanceModel::new(n, lat).capacity(4);
    Scenario {
        name: "devices",
        about: "200 devices, each with its own hash key, each sending a request about once a \
                second (think time 990 ms): a light load, ~2 requests in flight in all. Four \
                instances (4 slots, log-normal median 10 ms); `c` is down from 20 s to 40 s.",
        instances: vec![
            inst("a"),
            inst("b"),
            inst("c").down_between(20_000, 40_000),
            inst("d"),
        ],
        workload: Workload {
            think_ms: 990.0,
            ramp_ms: 1_000.0,
            ..workload(200, seed)
        },
    }
}

/// Every scenario, in [`NAMES`] order.
pub fn all(seed: u64) -> Vec<Scenario> {
    vec![
        degraded(seed),
        heterogeneous(seed),
        weighted(seed),
        spill(seed),
        flaky(seed),
        outage(seed),
        devices(seed),
    ]
}

/// The scenario called `name`.
pub fn by_name(name: &str, seed: u64) -> Option<Scenario> {
    all(seed).into_iter().find(|s| s.name == name)
}

impl Scenario {
    /// One report per algorithm, in [`Algorithm::ALL`] order.
    pub fn run_all(&self) -> Vec<Report> {
        Algorithm::ALL
            .iter()
            .map(|&alg| run(alg, &self.instances, &self.workload))
            .collect()
    }

    /// A Markdown section: heading, description, the comparison table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n\n{}\n", self.name, self.about);
        out.push_str(&markdown_table(&self.run_all()));
        out
    }
}
