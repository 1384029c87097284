//! The gateway's dynamic-weights task in virtual time: every `interval`,
//! what each instance did since the last one (tries, errors, the mean
//! time to answer, Little's-law requests in flight, its load report) goes
//! to the policy's controller ([`fulcrum_policy::dynamic_weight::next`]),
//! and the weights it returns are what the view reads next — the same
//! controller and the same samples as the control plane's task
//! (`control/src/dynamic_weights.rs`), which reads the data plane's
//! counters instead.

use crate::instance::{Inst, Tally};
use fulcrum_policy::dynamic_weight::{next, DynamicWeights, Memory, Sample};
use fulcrum_policy::view;

/// The controller's state, and the weights it gave after each interval.
#[derive(Debug)]
pub(crate) struct Adjuster {
    settings: DynamicWeights,
    /// When the current interval started, ms.
    since_ms: u64,
    memory: Vec<Option<Memory>>,
    /// (time, the weight of each instance) after every interval.
    pub history: Vec<(u64, Vec<u32>)>,
}

impl Adjuster {
    pub fn new(settings: DynamicWeights, instances: usize) -> Self {
        Self {
            settings,
            since_ms: 0,
            memory: vec![None; instances],
            history: vec![],
        }
    }

    /// Ends every interval that is over at `now_ms` (the last one's
    /// samples cover all of them: no try ends between two events).
    pub fn run_due(&mut self, insts: &mut [Inst<'_>], now_ms: u64) {
        let interval = self.settings.interval_ms.max(1);
        if now_ms < self.since_ms + interval {
            return;
        }
        let span_ms = now_ms - self.since_ms;
        let samples: Vec<Sample> = insts.iter().map(|s| sample(s, span_ms)).collect();
        let weights = next(&self.settings, &samples, &mut self.memory);
        for (s, w) in insts.iter_mut().zip(&weights) {
            s.dynamic_weight = Some(*w);
            s.tally = Tally::default();
        }
        self.history.push((now_ms, weights));
        self.since_ms = now_ms - (now_ms - self.since_ms) % interval;
    }
}

fn sample(s: &Inst<'_>, span_ms: u64) -> Sample {
    use fulcrum_policy::facts::InstanceFacts;
    let t = s.tally;
    let latency_ms = (t.answered > 0).then(|| t.latency_sum_ms / t.answered as f64);
    Sample {
        healthy: s.healthy(),
        requests: t.tries,
        errors: t.errors,
        latency_ms,
        in_flight: latency_ms.map_or(0.0, |l| t.tries as f64 * l / span_ms as f64),
        utilisation: None,
        weight: view::base_weight(s),
    }
}
