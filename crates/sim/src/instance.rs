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
//! each decision instead ([`Inst::refresh`]).

use crate::model::InstanceModel;
use fulcrum_policy::estimate::Estimates;
use fulcrum_policy::facts::{InstanceFacts, Load};
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
    /// The load report as of the last [`Inst::refresh`]: in-flight over
    /// capacity, reported at that instant.
    report: Load,
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
            report: Load::default(),
        }
    }

    /// Brings what the gateway knows of the instance to `now_ms`: whether
    /// it is down, and a load report that is exact and fresh.
    pub fn refresh(&mut self, now_ms: u64) {
        self.down = self.model.is_down(now_ms);
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
    fn healthy(&self) -> bool {
        !self.down
    }
    fn drained(&self) -> bool {
        false
    }
    fn ejected_until_ms(&self) -> u64 {
        0
    }
    fn up_since_ms(&self) -> u64 {
        0
    }
    fn in_flight(&self) -> u32 {
        self.in_flight
    }
    fn max_concurrent(&self) -> Option<u32> {
        self.model.max_concurrent
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
