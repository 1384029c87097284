//! The dynamic-weights task (`dynamic_weights:`): every pool's `interval`,
//! it reads what each member did since the last time, asks the policy's
//! controller ([`fulcrum_policy::dynamic_weight::next`]) for the next
//! weights, and stores them in the members' atomics, which the data
//! plane's view reads on every pick. Off the request path: one read of a
//! few counters per member per interval.
//!
//! What it reads of a member: tries and errors since start
//! (`InstanceState::window`), the latency histogram's count and sum
//! (`InstanceState::latency`), health, and a fresh ORCA load report;
//! the difference between two readings is the interval's [`Sample`]
//! (mean latency, error rate, and mean requests in flight by Little's law:
//! tries per second × mean latency). An instance's counters are shared by
//! every pool it is in, so one in two pools is judged on all its traffic.
//!
//! Each pool's controller memory is kept here by endpoint, so a reload
//! that keeps a member keeps its weight; one that turns a pool's dynamic
//! weights off forgets them (the snapshot build then clears the atomics).
//! A `consistent_hash` pool is republished when its weights change, so
//! its ring follows them (the build scales them to the ring's size).

use crate::publish::Publisher;
use fulcrum_dataplane::runtime::{Member, PoolRuntime};
use fulcrum_dataplane::Gateway;
use fulcrum_policy::dynamic_weight::{next, DynamicWeights, Memory, Sample, MIN_REQUESTS};
use fulcrum_policy::{estimate, view, Algorithm};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Longest sleep between two looks at the snapshot, so a reload that turns
/// dynamic weights on (or shortens the interval) is followed soon.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// A member with too few tries keeps its reading for at most this many
/// intervals: a member drained, held out or idle for long is judged on
/// what it does after, not on a span mostly of the pause.
const KEEP_AT_MOST: u64 = 5;

/// One member's counters since start, when last read (`at_ms`, clock ms).
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    at_ms: u64,
    tries: u64,
    errors: u64,
    answered: u64,
    latency_sum_ms: f64,
}

impl Reading {
    fn of(m: &Member, at_ms: u64) -> Self {
        let (tries, errors) = m.inst.window.totals();
        let (answered, latency_sum_ms) = m.inst.latency.totals();
        Self {
            at_ms,
            tries,
            errors,
            answered,
            latency_sum_ms,
        }
    }
}

/// One pool's controller state.
#[derive(Debug, Default)]
struct PoolState {
    /// When the last interval ended (clock ms).
    at_ms: u64,
    readings: HashMap<String, Reading>,
    memory: HashMap<String, Memory>,
}

/// Every pool's controller state.
#[derive(Debug, Default)]
pub struct Controller {
    pools: HashMap<String, PoolState>,
}

/// Starts the task (abort the handle to stop it).
pub fn start(gateway: Arc<Gateway>, publisher: Arc<Publisher>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = Controller::default();
        loop {
            let wait = c.tick(&gateway, &publisher);
            tokio::time::sleep(wait.min(LOOK_AGAIN)).await;
        }
    })
}

impl Controller {
    /// Recomputes the weights of every pool whose interval is over, and
    /// says how long until the next one is.
    pub fn tick(&mut self, gw: &Gateway, publisher: &Publisher) -> Duration {
        let now = gw.clock.now_ms();
        let snap = gw.snapshot();
        let mut wait = LOOK_AGAIN;
        let mut republish = false;
        self.pools.retain(|name, _| {
            snap.pool(name)
                .is_some_and(|p| p.cfg.dynamic_weights.is_some())
        });
        for p in &snap.pools {
            let Some(s) = p.cfg.dynamic_weights else {
                continue;
            };
            let st = self.pools.entry(p.cfg.name.clone()).or_insert_with(|| {
                // The first reading starts the first interval.
                PoolState {
                    at_ms: now,
                    readings: read(p, now),
                    memory: HashMap::new(),
                }
            });
            let due = st.at_ms + s.interval_ms;
            if now < due {
                wait = wait.min(Duration::from_millis(due - now));
                continue;
            }
            let changed = st.interval(p, &s, now);
            republish |= changed && p.cfg.algorithm == Algorithm::ConsistentHash;
            wait = wait.min(Duration::from_millis(s.interval_ms));
        }
        if republish {
            publisher.publish();
        }
        wait
    }
}

fn read(p: &PoolRuntime, now: u64) -> HashMap<String, Reading> {
    p.members
        .iter()
        .map(|m| (m.inst.endpoint.url.clone(), Reading::of(m, now)))
        .collect()
}

impl PoolState {
    /// Ends an interval at `now`: samples, the controller, the atomics.
    /// Whether any weight changed.
    fn interval(&mut self, p: &PoolRuntime, s: &DynamicWeights, now: u64) -> bool {
        let befores: Vec<Reading> = p
            .members
            .iter()
            .map(|m| {
                // A member new since the last interval has nothing to
                // show yet: its sample is empty, and its reading starts now.
                let before = self.readings.get(&m.inst.endpoint.url).copied();
                before.unwrap_or_else(|| Reading::of(m, now))
            })
            .collect();
        let samples: Vec<Sample> = p
            .members
            .iter()
            .zip(&befores)
            .map(|(m, before)| sample(m, *before, now))
            .collect();
        let mut memory: Vec<Option<Memory>> = p
            .members
            .iter()
            .map(|m| self.memory.get(&m.inst.endpoint.url).copied())
            .collect();
        let weights = next(s, &samples, &mut memory);
        let mut changed = false;
        for ((m, w), mem) in p.members.iter().zip(weights).zip(memory) {
            changed |= m.dynamic_weight.get() != Some(w);
            m.dynamic_weight.set(Some(w));
            if let Some(mem) = mem {
                self.memory.insert(m.inst.endpoint.url.clone(), mem);
            }
        }
        self.memory
            .retain(|url, _| p.members.iter().any(|m| &m.inst.endpoint.url == url));
        // A healthy member with too few tries to be judged keeps its
        // reading: its next sample spans this interval too, and the next,
        // until it has enough (for at most `KEEP_AT_MOST` intervals).
        // Otherwise a weight that fell low enough to
        // get under `MIN_REQUESTS` an interval could never be judged
        // again, and stayed there (seen on loopback with a 1 s interval:
        // the 1-slot instance held at 29 for nine intervals).
        self.readings = p
            .members
            .iter()
            .zip(befores.iter().zip(&samples))
            .map(|(m, (before, smp))| {
                let young = now.saturating_sub(before.at_ms) < KEEP_AT_MOST * s.interval_ms;
                let keep = smp.healthy && smp.requests < MIN_REQUESTS && young;
                let r = if keep { *before } else { Reading::of(m, now) };
                (m.inst.endpoint.url.clone(), r)
            })
            .collect();
        self.at_ms = now;
        tracing::debug!(pool = %p.cfg.name, weights = ?p.members.iter().map(|m| m.dynamic_weight.get()).collect::<Vec<_>>(), "dynamic weights");
        changed
    }
}

/// What member `m` did since reading `before`.
fn sample(m: &Member, before: Reading, now: u64) -> Sample {
    let after = Reading::of(m, now);
    let span_ms = now.saturating_sub(before.at_ms).max(1);
    let answered = after.answered.saturating_sub(before.answered);
    let requests = after.tries.saturating_sub(before.tries);
    let latency_ms =
        (answered > 0).then(|| (after.latency_sum_ms - before.latency_sum_ms) / answered as f64);
    let utilisation = m
        .inst
        .load()
        .filter(|l| estimate::fresh(l.at_ms, now))
        .and_then(|l| match (l.cpu, l.mem) {
            (Some(c), Some(x)) => Some((c + x) / 2.0),
            (c, x) => c.or(x),
        });
    Sample {
        healthy: m.inst.is_healthy(),
        requests,
        errors: after.errors.saturating_sub(before.errors),
        latency_ms,
        in_flight: latency_ms.map_or(0.0, |l| requests as f64 * l / span_ms as f64),
        utilisation,
        weight: view::base_weight(m),
    }
}
