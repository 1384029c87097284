//! The gateway's learned-limits task (`max_concurrent: auto`) in virtual
//! time: each instance's tick ends once a second has passed and it
//! answered [`MIN_ANSWERS`] tries (or after [`LONGEST_TICK_MS`]); what it
//! did in the tick — tries, errors, mean time to answer and its spread, Little's-law
//! requests in flight, and whether any request waited in the admission
//! queue — goes to the policy's controller
//! ([`fulcrum_policy::concurrency_limit::next`]), and the limit it returns
//! is what the view reads next: the same controller and the same samples
//! as the control plane's task (`control/src/concurrency_limits.rs`).

use crate::instance::{Inst, Tally};
use fulcrum_policy::concurrency_limit::{next, Bounds, Memory, Sample, MIN_ANSWERS};

/// The shortest tick (the control task's `TICK`).
pub const TICK_MS: u64 = 1_000;
/// The longest tick (the control task's `LONGEST_TICK`).
pub const LONGEST_TICK_MS: u64 = 30_000;

/// One instance's controller and its current tick.
#[derive(Debug)]
struct One {
    memory: Memory,
    since_ms: u64,
    tally: Tally,
}

/// Every instance's learned limit, and its history.
#[derive(Debug)]
pub(crate) struct Limiter {
    bounds: Bounds,
    each: Vec<One>,
    /// A request waited in the admission queue since the last tick of
    /// each instance.
    queued: Vec<bool>,
    /// (time, the limit of each instance) whenever one changed.
    pub history: Vec<(u64, Vec<u32>)>,
}

impl Limiter {
    /// Every instance starts at `bounds.min`, in slow start.
    pub fn new(bounds: Bounds, insts: &mut [Inst<'_>]) -> Self {
        let each: Vec<One> = insts
            .iter_mut()
            .map(|s| {
                let memory = Memory::new(&bounds);
                s.learned_limit = Some(memory.limit);
                One {
                    memory,
                    since_ms: 0,
                    tally: Tally::default(),
                }
            })
            .collect();
        let history = vec![(0, each.iter().map(|o| o.memory.limit).collect())];
        Self {
            bounds,
            queued: vec![false; each.len()],
            each,
            history,
        }
    }

    /// A request found every instance at its limit and waits.
    pub fn waited(&mut self) {
        self.queued.iter_mut().for_each(|q| *q = true);
    }

    /// Instance `i` ended a try.
    pub fn add(&mut self, i: usize, latency_ms: Option<f64>, failed: bool) {
        self.each[i].tally.add(latency_ms, failed);
    }

    /// Ends every tick that is over at `now_ms`.
    pub fn run_due(&mut self, insts: &mut [Inst<'_>], now_ms: u64) {
        let mut changed = false;
        for (i, (one, s)) in self.each.iter_mut().zip(insts.iter_mut()).enumerate() {
            let span = now_ms.saturating_sub(one.since_ms);
            let t = one.tally;
            if !((span >= TICK_MS && t.answered >= MIN_ANSWERS) || span >= LONGEST_TICK_MS) {
                continue;
            }
            let latency_ms = if t.answered > 0 {
                t.latency_sum_ms / t.answered as f64
            } else {
                0.0
            };
            let sample = Sample {
                tries: t.tries,
                errors: t.errors,
                answered: t.answered,
                latency_ms,
                latency_sd_ms: t.latency_sd_ms(),
                in_flight: t.answered as f64 * latency_ms / span.max(1) as f64,
                queued: self.queued[i],
            };
            let l = next(&self.bounds, &sample, &mut one.memory);
            changed |= s.learned_limit != Some(l);
            s.learned_limit = Some(l);
            one.tally = Tally::default();
            one.since_ms = now_ms;
            self.queued[i] = false;
        }
        if changed {
            self.history.push((
                now_ms,
                insts.iter().map(|s| s.learned_limit.unwrap_or(0)).collect(),
            ));
        }
    }
}
