//! The learned-limits task (`max_concurrent: auto`): every tick it reads
//! what each learning instance did since the last one, asks the policy's
//! controller ([`fulcrum_policy::concurrency_limit::next`]) for its next
//! limit, and stores it in the instance's atomic, which the data plane's
//! view reads on every pick. Off the request path: a few counter reads
//! per instance per tick.
//!
//! What it reads of an instance: tries and errors since start
//! (`InstanceState::window`), the count, sum and sum of squares of the
//! times its tries
//! held their slot (`InstanceState::held`: from the pick to the end of the
//! response body), and whether requests
//! of its pools waited in the admission queue (the pools' queue-wait
//! histograms count every request that waited). A tick ends once
//! [`TICK`] has passed and the instance answered at least
//! [`MIN_ANSWERS`] tries since the last one, or after [`LONGEST_TICK`]
//! whatever it did, so a slow instance (an LLM answering in seconds) is
//! judged on enough answers and a fast one every second.
//!
//! An instance learns one limit, even when it is in several pools (its
//! capacity is its own); the bounds are those of the first pool that
//! names it. Its controller memory is kept here by endpoint, so a reload
//! that keeps it keeps its limit; an instance no pool learns for is
//! forgotten.

use fulcrum_dataplane::runtime::moments::MomentsReading;
use fulcrum_dataplane::runtime::{InstanceState, Snapshot};
use fulcrum_dataplane::Gateway;
use fulcrum_policy::concurrency_limit::{
    next, standard_deviation, Bounds, Memory, Sample, MIN_ANSWERS,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The shortest tick.
pub const TICK: Duration = Duration::from_secs(1);
/// The longest tick: judged then even on fewer answers (the controller
/// then holds the limit).
pub const LONGEST_TICK: Duration = Duration::from_secs(30);
/// How often the task looks.
const LOOK: Duration = Duration::from_millis(250);

/// One instance's counters since start, when last read.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    tries: u64,
    errors: u64,
    /// The times tries held their slot (count, Σ, Σ²).
    held: MomentsReading,
    /// Requests that waited in the admission queue of its pools.
    queued: u64,
}

/// One learning instance.
#[derive(Debug)]
struct Learner {
    bounds: Bounds,
    memory: Memory,
    /// When the tick started (clock ms) and the counters then.
    since_ms: u64,
    at_start: Reading,
    /// Which `InstanceState` the readings are of (its address).
    state: usize,
}

/// Every learning instance's state, by endpoint.
#[derive(Debug, Default)]
pub struct Controller {
    learners: HashMap<String, Learner>,
}

/// Starts the task (abort the handle to stop it).
pub fn start(gateway: Arc<Gateway>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = Controller::default();
        loop {
            c.tick(&gateway);
            tokio::time::sleep(LOOK).await;
        }
    })
}

/// The instances that learn a limit, each with its bounds (the first
/// pool's) and the pools it is in.
fn learning(snap: &Snapshot) -> HashMap<&str, (Bounds, &Arc<InstanceState>)> {
    let mut out = HashMap::new();
    for p in &snap.pools {
        for m in &p.members {
            if let Some(b) = m.learn {
                out.entry(m.inst.endpoint.url.as_str())
                    .or_insert((b, &m.inst));
            }
        }
    }
    out
}

/// Requests that waited in the queues of the pools `inst` is in.
fn queued(snap: &Snapshot, inst: &InstanceState) -> u64 {
    snap.pools
        .iter()
        .filter(|p| {
            p.members
                .iter()
                .any(|m| m.inst.endpoint.url == inst.endpoint.url)
        })
        .flat_map(|p| p.counters.queue_wait.iter())
        .map(|h| h.count())
        .sum()
}

fn read(snap: &Snapshot, inst: &InstanceState) -> Reading {
    let (tries, errors) = inst.window.totals();
    // The whole time a slot was held, not the time to the response head:
    // a stream (an LLM's SSE answer) that waited behind another stream
    // at the instance has its head late by a whole stream, which made the
    // head latency of a limit one over capacity several times the
    // baseline and halved the limit (the capacity suite: 175 devices
    // instead of 253). Held time rises by `L / C` exactly (Little's law).
    Reading {
        tries,
        errors,
        held: inst.held.read(),
        queued: queued(snap, inst),
    }
}

impl Controller {
    /// Ends the tick of every learning instance whose tick is over.
    pub fn tick(&mut self, gw: &Gateway) {
        let now = gw.clock.now_ms();
        let snap = gw.snapshot();
        let learning = learning(&snap);
        self.learners
            .retain(|url, _| learning.contains_key(url.as_str()));
        for (url, (bounds, inst)) in learning {
            let l = self.learners.entry(url.to_string()).or_insert_with(|| {
                let memory = Memory::new(&bounds);
                inst.set_learned_limit(memory.limit);
                Learner {
                    bounds,
                    memory,
                    since_ms: now,
                    at_start: read(&snap, inst),
                    state: Arc::as_ptr(inst) as usize,
                }
            });
            if l.bounds != bounds {
                // A reload changed them: keep what was learned, within,
                // and start the tick again.
                l.bounds = bounds;
                l.memory.set_bounds(&bounds);
                inst.set_learned_limit(l.memory.limit);
                l.since_ms = now;
                l.at_start = read(&snap, inst);
            }
            let state = Arc::as_ptr(inst) as usize;
            if l.state != state {
                // A new state for the same endpoint (removed and added
                // again between two looks): its counters start from zero,
                // so the tick starts again from them.
                l.state = state;
                l.since_ms = now;
                l.at_start = read(&snap, inst);
                inst.set_learned_limit(l.memory.limit);
            }
            let after = read(&snap, inst);
            let span = now.saturating_sub(l.since_ms);
            let answered = after.held.count.wrapping_sub(l.at_start.held.count);
            let due = (span >= TICK.as_millis() as u64 && answered >= MIN_ANSWERS)
                || span >= LONGEST_TICK.as_millis() as u64;
            if !due {
                continue;
            }
            let s = sample(&l.at_start, &after, span);
            let limit = next(&l.bounds, &s, &mut l.memory);
            inst.set_learned_limit(limit);
            tracing::debug!(instance = %url, limit, latency_ms = s.latency_ms, in_flight = s.in_flight, queued = s.queued, "learned limit");
            l.since_ms = now;
            l.at_start = after;
        }
    }
}

/// What an instance did between two readings `span_ms` apart.
fn sample(before: &Reading, after: &Reading, span_ms: u64) -> Sample {
    let (answered, sum_ms, sum_sq_ms2) = after.held.since(&before.held);
    let latency_ms = if answered > 0 {
        sum_ms / answered as f64
    } else {
        0.0
    };
    let latency_sd_ms = standard_deviation(answered, sum_ms, sum_sq_ms2);
    Sample {
        tries: after.tries.saturating_sub(before.tries),
        errors: after.errors.saturating_sub(before.errors),
        answered,
        latency_ms,
        latency_sd_ms,
        in_flight: answered as f64 * latency_ms / span_ms.max(1) as f64,
        queued: after.queued > before.queued,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_the_difference_of_two_readings() {
        let before = Reading {
            tries: 10,
            errors: 1,
            held: MomentsReading {
                count: 9,
                sum_us: 900_000,
                sum_sq_us2: 90_000_000_000,
            },
            queued: 3,
        };
        // 10 answers of 100 ms and 10 of 300 ms.
        let after = Reading {
            tries: 30,
            errors: 2,
            held: MomentsReading {
                count: 29,
                sum_us: 900_000 + 20 * 200_000,
                sum_sq_us2: 90_000_000_000 + 10 * 100_000 * 100_000 + 10 * 300_000 * 300_000,
            },
            queued: 3,
        };
        let s = sample(&before, &after, 1000);
        assert_eq!((s.tries, s.errors, s.answered), (20, 1, 20));
        assert_eq!(s.latency_ms, 200.0);
        // Σ(x − 200)² = 20 · 100², over 19.
        assert!((s.latency_sd_ms - (20.0f64 * 10_000.0 / 19.0).sqrt()).abs() < 1e-9);
        // 20 answers of 200 ms in one second: 4 in flight on average.
        assert_eq!(s.in_flight, 4.0);
        assert!(!s.queued, "nobody waited");
        let later = Reading { queued: 4, ..after };
        assert!(sample(&after, &later, 1000).queued);
    }
}
