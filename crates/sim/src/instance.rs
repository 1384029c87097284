//! One simulated instance as the gateway sees it — in-flight and call
//! counts, latency and error-rate estimates, health — plus the instance's
//! own internal queue, and the [`InstanceFacts`] through which the policy's
//! view ([`fulcrum_policy::view`]) reads it, exactly as it reads the data
//! plane's instances.
//!
//! The simulator keeps no balancing rule of its own: weights, usability,
//! the `least_calls` floor and the estimators' updates are the policy's
//! ([`fulcrum_policy::view`], [`fulcrum_policy::estimate`]). What the data
//! plane learns from probes and load reports is read off the model at
//! each decision instead ([`Inst::refresh`]), or, for probes, given by
//! whoever drives the [`crate::Decider`] ([`Inst::set_probed`]). Passive
//! ejection is the policy's [`Ejector`], fed by the `Decider`.

use crate::model::InstanceModel;
use fulcrum_policy::estimate::Estimates;
use fulcrum_policy::facts::{InstanceFacts, Load};
use fulcrum_policy::passive::Ejector;
use fulcrum_policy::Priority;
use std::collections::VecDeque;

pub(crate) struct Inst<'a> {
    pub model: &'a InstanceModel,
    /// Requests the gateway has sent and not yet had answered.
    pub in_flight: u32,
    /// Requests the instance is working on (at most its capacity).
    pub busy: usize,
    /// Requests waiting inside the instance.
    pub fifo: VecDeque<usize>,
    /// Calls so far, as `least_calls` counts them (raised to the rejoin
    /// floor while out of service).
    pub calls: u64,
    pub estimates: Estimates,
    /// Service times and errors of this instance.
    pub rng: fastrand::Rng,
    pub max_in_flight: u32,
    pub errors: u64,
    /// Down at the time of the last [`Inst::refresh`] (what active health
    /// checks would have found).
    down: bool,
    /// Found down by probes ([`Inst::set_probed`]), besides the model's
    /// `down_between` window.
    probed_down: bool,
    /// Since when the instance is in service, for slow start (0 = since
    /// the start).
    up_since_ms: u64,
    /// The load report as of the last [`Inst::refresh`]: in-flight over
    /// capacity, reported at that instant.
    report: Load,
    /// Passive ejection (off unless the `Decider` has a `passive` setting).
    pub ejector: Ejector,
    /// The weight the dynamic-weights controller gave it last, if on.
    pub dynamic_weight: Option<u32>,
    /// Its tries since the last dynamic-weights interval.
    pub tally: Tally,
    /// The limit `max_concurrent: auto` learned last, if on (it replaces
    /// the model's `max_concurrent`).
    pub learned_limit: Option<u32>,
}

impl<'a> Inst<'a> {
    pub fn new(model: &'a InstanceModel, rng: fastrand::Rng) -> Self {
        Self {
            model,
            in_flight: 0,
            busy: 0,
            fifo: VecDeque::new(),
            calls: 0,
            estimates: Estimates::default(),
            rng,
            max_in_flight: 0,
            errors: 0,
            down: false,
            probed_down: false,
            up_since_ms: 0,
            report: Load::default(),
            ejector: Ejector::default(),
            dynamic_weight: None,
            tally: Tally::default(),
            learned_limit: None,
        }
    }

    /// Active probes found the instance down or up at `now_ms`. Back up, it
    /// is in service from `now_ms` (as the data plane's
    /// `InstanceState::observe_probe`: at least 1, 0 meaning since the
    /// start).
    /// A flip back up also ends a passive ejection, as the passing probe
    /// that flips it does in the data plane.
    pub fn set_probed(&mut self, up: bool, now_ms: u64) {
        if up && self.probed_down {
            self.up_since_ms = self.up_since_ms.max(now_ms.max(1));
            self.ejector.end(now_ms);
        }
        self.probed_down = !up;
    }

    /// Brings what the gateway knows of the instance to `now_ms`: whether
    /// it is down, and a load report that is exact and fresh.
    pub fn refresh(&mut self, now_ms: u64) {
        self.down = self.probed_down || self.model.is_down(now_ms);
        if let Some((_, t1)) = self.model.down_between.filter(|&(_, t1)| now_ms >= t1) {
            // Back in service since its outage ended.
            self.up_since_ms = self.up_since_ms.max(t1.max(1));
        }
        let load = (f64::from(self.in_flight) / self.model.capacity.max(1) as f64).min(1.0);
        self.report = Load {
            cpu: Some(load),
            mem: Some(load),
            at_ms: now_ms,
        };
    }
}

impl InstanceFacts for Inst<'_> {
    fn configured_weight(&self) -> u32 {
        self.model.weight
    }
    fn weight_override(&self) -> Option<u32> {
        None
    }
    fn dynamic_weight(&self) -> Option<u32> {
        self.dynamic_weight
    }
    fn healthy(&self) -> bool {
        !self.down
    }
    fn drained(&self) -> bool {
        false
    }
    fn ejected_until_ms(&self) -> u64 {
        self.ejector.ejected_until()
    }
    fn up_since_ms(&self) -> u64 {
        self.up_since_ms
    }
    fn in_flight(&self) -> u32 {
        self.in_flight
    }
    fn max_concurrent(&self) -> Option<u32> {
        self.learned_limit.or(self.model.max_concurrent)
    }
    fn priority(&self) -> Priority {
        self.model.priority
    }
    fn calls(&self) -> u64 {
        self.calls
    }
    fn estimates(&self) -> Estimates {
        self.estimates
    }
    fn load(&self) -> Option<Load> {
        Some(self.report)
    }
}

/// One instance's tries since the last interval ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub tries: u64,
    pub errors: u64,
    pub latency_sum_ms: f64,
    /// Σ latency², ms² (for the spread).
    pub latency_sq_ms2: f64,
    pub answered: u64,
}

impl Tally {
    /// One try ended: answered after `latency_ms` (or not), failed or not.
    pub fn add(&mut self, latency_ms: Option<f64>, failed: bool) {
        self.tries += 1;
        self.errors += u64::from(failed);
        if let Some(l) = latency_ms {
            self.answered += 1;
            self.latency_sum_ms += l;
            self.latency_sq_ms2 += l * l;
        }
    }

    /// The standard deviation of the answers' latencies, ms.
    pub fn latency_sd_ms(&self) -> f64 {
        fulcrum_policy::concurrency_limit::standard_deviation(
            self.answered,
            self.latency_sum_ms,
            self.latency_sq_ms2,
        )
    }
}
