//! The `classes` scenario: request classes under twice the pool's
//! capacity (issue 15's must-show), set up as the loopback test
//! (`crates/fulcrum/tests/it/priority_classes.rs`) is: two instances of 4
//! slots at a fixed 50 ms, `max_concurrent: 4` each (8 slots), a queue of
//! 4 with a 10 s timeout; 8 interactive clients pausing 0–100 ms between
//! requests (alone they keep about half the pool busy), and 8 batch
//! clients sending again at once (20 ms after a 503). Interactive alone
//! gives the unloaded p99; then both, with `reserve: 2`, without a
//! reserve, with `reserve: 2` and a queue as long as the interactive
//! clients are many, and without classes (both groups `normal`).

use crate::engine::run;
use crate::model::{ClassMix, ClientClass, InstanceModel, LatencyModel, Stop, Workload};
use crate::report::{ClassReport, Report};
use fulcrum_policy::{Algorithm, RequestClass};
use std::fmt::Write as _;

/// Name of the scenario on the command line.
pub const NAME: &str = "classes";
/// The instances' service time, ms.
pub const LATENCY_MS: f64 = 50.0;
/// The pool's slots (`max_concurrent` added up).
pub const SLOTS: u32 = 8;
/// Clients of each group.
pub const CLIENTS: usize = 8;
/// The queue's length (`queue.max`), as in the loopback test.
pub const QUEUE: usize = 4;
/// Virtual length of each run.
pub const DURATION_MS: u64 = 60_000;

/// The pool: two instances, 4 slots and `max_concurrent: 4` each.
pub fn instances() -> Vec<InstanceModel> {
    ["a", "b"]
        .into_iter()
        .map(|n| {
            InstanceModel::new(n, LatencyModel::Fixed(LATENCY_MS))
                .capacity(4)
                .max_concurrent(4)
        })
        .collect()
}

/// One setup of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The interactive clients alone: the unloaded value.
    InteractiveAlone,
    /// Both groups, with this `queue.reserve` and `queue.max`.
    Classes { reserve: u32, queue: usize },
    /// Both groups, every request `normal` (no classes).
    NoClasses,
}

impl Setup {
    pub const ALL: [Setup; 5] = [
        Setup::InteractiveAlone,
        Setup::Classes {
            reserve: 2,
            queue: QUEUE,
        },
        Setup::Classes {
            reserve: 0,
            queue: QUEUE,
        },
        Setup::Classes {
            reserve: 2,
            queue: CLIENTS,
        },
        Setup::NoClasses,
    ];

    pub fn label(self) -> String {
        match self {
            Setup::InteractiveAlone => "interactive alone (unloaded)".into(),
            Setup::Classes { reserve, queue } => {
                format!("interactive + batch, reserve {reserve}, queue {queue}")
            }
            Setup::NoClasses => "both groups `normal` (no classes)".into(),
        }
    }
}

/// The clients of `setup`: interactive ones first, then batch ones.
pub fn workload(seed: u64, setup: Setup) -> Workload {
    let interactive = ClientClass {
        class: RequestClass::Interactive,
        think: LatencyModel::Uniform(0.0, 100.0),
    };
    let batch = ClientClass {
        class: RequestClass::Batch,
        think: LatencyModel::Fixed(0.0),
    };
    let (mut clients, reserve, queue) = match setup {
        Setup::InteractiveAlone => (vec![interactive; CLIENTS], 0, QUEUE),
        Setup::Classes { reserve, queue } => (
            [vec![interactive; CLIENTS], vec![batch; CLIENTS]].concat(),
            reserve,
            queue,
        ),
        Setup::NoClasses => (
            [vec![interactive; CLIENTS], vec![batch; CLIENTS]].concat(),
            0,
            QUEUE,
        ),
    };
    if setup == Setup::NoClasses {
        for c in &mut clients {
            c.class = RequestClass::Normal;
        }
    }
    Workload {
        seed,
        ramp_ms: 100.0,
        queue_max: queue,
        queue_timeout_ms: 10_000,
        fail_pause_ms: 20.0,
        classes: Some(ClassMix {
            clients: clients.clone(),
            reserve,
        }),
        ..Workload::new(clients.len(), Stop::AfterMs(DURATION_MS))
    }
}

/// The run of `setup` (balanced by `least_connections`, as the loopback
/// test's pool).
pub fn report(seed: u64, setup: Setup) -> Report {
    run(
        Algorithm::LeastConnections,
        &instances(),
        &workload(seed, setup),
    )
}

/// What `class` got in `r`.
pub fn class(r: &Report, class: RequestClass) -> &ClassReport {
    &r.classes[class.index()]
}

/// The Markdown section.
pub fn markdown(seed: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {NAME}\n\nTwo instances of 4 slots, a fixed 50 ms, `max_concurrent: 4` each \
         (8 slots), `least_connections`, a queue of 4 (timeout 10 s). 8 interactive \
         clients pausing 0–100 ms between requests; 8 batch clients sending again at once \
         (20 ms after a 503): twice the capacity. For the last row both groups send `normal` requests: its first columns are \
         every request, and its refusals are all `normal` ones.\n"
    );
    let _ = writeln!(
        out,
        "| setup | interactive served | p50 ms | p99 ms | p99 / unloaded | batch served \
         | batch req/s | refused interactive | refused batch (shed) | slots busy % |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    let alone = report(seed, Setup::InteractiveAlone);
    let unloaded = class(&alone, RequestClass::Interactive).latency.p99;
    for setup in Setup::ALL {
        let r = report(seed, setup);
        // Without classes every request is `normal`: the row shows them
        // all in the first columns.
        let first = match setup {
            Setup::NoClasses => RequestClass::Normal,
            _ => RequestClass::Interactive,
        };
        let i = class(&r, first);
        let batch = match setup {
            Setup::NoClasses => format!("– | – | {} (`normal`) | –", i.rejected),
            _ => {
                let b = class(&r, RequestClass::Batch);
                let rps = b.served as f64 * 1000.0 / r.elapsed_ms;
                format!(
                    "{} | {rps:.0} | {} | {} ({})",
                    b.served, i.rejected, b.rejected, b.shed
                )
            }
        };
        let busy = r.served as f64 * LATENCY_MS / (f64::from(SLOTS) * r.elapsed_ms) * 100.0;
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.2} | {batch} | {busy:.0} |",
            setup.label(),
            i.served,
            i.latency.p50,
            i.latency.p99,
            i.latency.p99 / unloaded,
        );
    }
    out
}
