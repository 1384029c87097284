//! The gateway's side of the simulator, one step at a time: [`Decider`]
//! holds what the gateway knows of each modelled instance and makes every
//! routing decision through the policy's view ([`fulcrum_policy::view`]),
//! exactly as the data plane's admission does.
//!
//! The event loop ([`crate::engine`]) drives it from its virtual clock;
//! anything else can drive it by hand — pick, finish, flip health, advance
//! the clock — to replay one sequence of events through the simulator's
//! decisions and compare them with another implementation's (the data
//! plane's `same_picks` test does).
//!
//! What each method mirrors in the data plane:
//!
//! * [`Decider::choose`] — `admission::acquire`: the view's choice, the
//!   changes it asks for applied, and on `Picked(i)` an in-flight slot and a
//!   call counted on `i` (`InstanceState::try_acquire`).
//! * [`Decider::finish`] — `feedback::answered` / `feedback::failed` (the
//!   policy's estimators, [`fulcrum_policy::estimate::Estimates::observe`])
//!   and the slot's release.
//! * [`Decider::set_health`] — an active-probe flip
//!   (`InstanceState::observe_probe`): down, or back in service now (slow
//!   start ramps from here, and a passive ejection ends).
//! * [`Decider::fail`] — the passive-ejection part of `feedback::failed`:
//!   the failure counted, and the instance ejected when it reaches
//!   `max_fails` and the pool's cap allows
//!   ([`fulcrum_policy::passive::may_eject`]).
//! * [`Decider::probe_passed`] — a passing probe that flips nothing
//!   (`InstanceState::observe_probe(true, ..)`): it ends a passive ejection.

use crate::dynamic::Adjuster;
use crate::instance::Inst;
use crate::limits::Limiter;
use crate::model::InstanceModel;
use fulcrum_policy::concurrency_limit::Bounds;
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::passive::{may_eject, PassiveConfig, Verdict};
use fulcrum_policy::view::{self, Change, PoolView, Scratch};
use fulcrum_policy::{
    build, hash_bytes, Algorithm, Balancer, Estimates, Inputs, PickContext, SelectOutcome,
};

/// The gateway's decisions over a list of modelled instances, with its own
/// clock (milliseconds) and seeded random source.
pub struct Decider<'a> {
    pub(crate) insts: Vec<Inst<'a>>,
    balancer: Box<dyn Balancer>,
    view: PoolView,
    rng: fastrand::Rng,
    scratch: Scratch,
    passive: PassiveConfig,
    now_ms: u64,
    dynamic: Option<Adjuster>,
    limits: Option<Limiter>,
}

impl<'a> Decider<'a> {
    /// A pool of `instances` balanced by `alg`, at time 0, without slow
    /// start or panic mode. The policy's random stream is seeded with
    /// `seed` (as the data plane's `clock::Rng::seeded(seed)`); so is each
    /// instance's own stream of service times and errors (read by the
    /// engine only), derived from `seed` and its position.
    ///
    /// Each instance's stable id, for `consistent_hash`, is the hash of its
    /// name, as the data plane hashes an instance's endpoint URL.
    pub fn new(alg: Algorithm, instances: &'a [InstanceModel], seed: u64) -> Self {
        let members: Vec<(u64, u32)> = instances
            .iter()
            .map(|m| (hash_bytes(m.name.as_bytes()), m.weight))
            .collect();
        let insts = instances
            .iter()
            .enumerate()
            .map(|(i, model)| {
                let seed = seed ^ (i as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d);
                Inst::new(model, fastrand::Rng::with_seed(seed))
            })
            .collect();
        Self {
            insts,
            balancer: build(alg, &members),
            // `calls` for every algorithm, not only least_calls as in the
            // data plane: the report counts an instance's requests by its
            // `calls`, which the rejoin floor has always raised here for
            // every algorithm. Picks are the same either way (only
            // least_calls reads calls); this keeps the reports as they were.
            view: PoolView::new(
                Inputs {
                    calls: true,
                    ..alg.inputs()
                },
                0,
                false,
            ),
            rng: fastrand::Rng::with_seed(seed),
            scratch: Scratch::default(),
            passive: PassiveConfig {
                max_fails: 0,
                fail_timeout_ms: 0,
                max_ejection_percent: 0,
            },
            now_ms: 0,
            dynamic: None,
            limits: None,
        }
    }

    /// `max_concurrent: auto` on every instance (off until given): each
    /// learns its limit from its latency (see `limits.rs`), replacing its
    /// model's `max_concurrent`.
    pub fn learned_limits(mut self, bounds: Bounds) -> Self {
        self.limits = Some(Limiter::new(bounds, &mut self.insts));
        self
    }

    /// The learned limits whenever one changed: (time ms, the limit of
    /// each instance). Empty when off.
    pub fn limit_history(&self) -> &[(u64, Vec<u32>)] {
        self.limits.as_ref().map_or(&[], |l| &l.history)
    }

    /// The pool's `dynamic_weights:` (off until given): every interval of
    /// the clock, the policy's controller sets each instance's weight from
    /// what it did in the interval (see `dynamic.rs`).
    pub fn dynamic_weights(mut self, s: DynamicWeights) -> Self {
        self.dynamic = Some(Adjuster::new(s, self.insts.len()));
        self
    }

    /// The dynamic weights after each interval so far: (time ms, the
    /// weight of each instance; 0 while down). Empty when off.
    pub fn weight_history(&self) -> &[(u64, Vec<u32>)] {
        self.dynamic.as_ref().map_or(&[], |d| &d.history)
    }

    /// The pool's `passive:` setting (off until given): what
    /// [`Self::fail`] does.
    pub fn passive(mut self, cfg: PassiveConfig) -> Self {
        self.passive = cfg;
        self
    }

    /// The pool's `slow_start` (0 = off): an instance back in service (see
    /// [`Self::set_health`], or the end of its `down_between` window) ramps
    /// its weight up over this long.
    pub fn slow_start_ms(mut self, ms: u64) -> Self {
        self.view.slow_start_ms = ms;
        self
    }

    /// The pool's `panic` setting: when no instance is usable, try them
    /// all, health aside.
    pub fn panic(mut self, on: bool) -> Self {
        self.view.panic = on;
        self
    }

    /// The decider's clock, milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Moves the clock `ms` forward.
    pub fn advance(&mut self, ms: u64) {
        self.advance_to(self.now_ms + ms);
    }

    /// Moves the clock to `now_ms` (never back), ending any dynamic-weights
    /// interval or learned-limit tick that is over.
    pub fn advance_to(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        if let Some(l) = &mut self.limits {
            l.run_due(&mut self.insts, self.now_ms);
        }
        if let Some(d) = &mut self.dynamic {
            for s in &mut self.insts {
                s.refresh(self.now_ms);
            }
            d.run_due(&mut self.insts, self.now_ms);
        }
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    /// Whether the pool has no instance.
    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Requests in flight to instance `i`.
    pub fn in_flight(&self, i: usize) -> u32 {
        self.insts[i].in_flight
    }

    /// Calls counted on instance `i` (requests sent to it, raised to the
    /// `least_calls` rejoin floor while out of service).
    pub fn calls(&self, i: usize) -> u64 {
        self.insts[i].calls
    }

    /// The latency and error-rate estimates of instance `i`.
    pub fn estimates(&self, i: usize) -> Estimates {
        self.insts[i].estimates
    }

    /// Chooses an instance now for a request with hash `key`, never one of
    /// `excluded` (instances a retry already tried), through the policy's
    /// view, and applies the changes the view asks for. On `Picked(i)` the
    /// request holds an in-flight slot on `i` until [`Self::finish`].
    pub fn choose(&mut self, key: Option<u64>, excluded: &[usize]) -> SelectOutcome {
        let now_ms = self.now_ms;
        for s in &mut self.insts {
            s.refresh(now_ms);
        }
        let mut ctx = PickContext::keyed(&mut self.rng, key);
        let choice = view::choose(
            &self.view,
            &self.insts,
            excluded,
            now_ms,
            self.balancer.as_ref(),
            &mut ctx,
            &mut self.scratch,
        );
        for c in &self.scratch.changes {
            match *c {
                Change::RaiseCalls { slot, floor } => {
                    let calls = &mut self.insts[slot].calls;
                    *calls = (*calls).max(floor);
                }
            }
        }
        if let (SelectOutcome::Busy, Some(l)) = (choice.outcome, &mut self.limits) {
            l.waited();
        }
        if let SelectOutcome::Picked(i) = choice.outcome {
            let s = &mut self.insts[i];
            s.in_flight += 1;
            s.calls += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        }
        choice.outcome
    }

    /// [`Self::choose`] with nothing excluded: the chosen instance, `None`
    /// when every usable one is busy or none is usable.
    pub fn pick(&mut self, key: Option<u64>) -> Option<usize> {
        match self.choose(key, &[]) {
            SelectOutcome::Picked(i) => Some(i),
            _ => None,
        }
    }

    /// Instance `i` finished a request now: its slot is free again, and the
    /// estimators learn how long it took to answer (`None`: no answer to
    /// time, e.g. a refused connection) and whether it failed.
    pub fn finish(&mut self, i: usize, latency_ms: Option<f64>, failed: bool) {
        let s = &mut self.insts[i];
        s.in_flight -= 1;
        s.estimates.observe(latency_ms, failed, self.now_ms);
        s.tally.add(latency_ms, failed);
        if let Some(l) = &mut self.limits {
            l.add(i, latency_ms, failed);
        }
    }

    /// Active probes found instance `i` down (`false`) or up (`true`) now.
    /// An instance coming back is in service from now on (slow start), and
    /// no longer ejected. Down here or in its model's `down_between` window
    /// is down.
    pub fn set_health(&mut self, i: usize, up: bool) {
        let now_ms = self.now_ms;
        self.insts[i].set_probed(up, now_ms);
    }

    /// A try on instance `i` failed now in the instance's fault (what the
    /// data plane's `feedback::failed` is called for): counted for passive
    /// ejection, which ejects it at `max_fails` if the pool's cap allows.
    /// Does nothing without [`Self::passive`].
    pub fn fail(&mut self, i: usize) -> Verdict {
        let now_ms = self.now_ms;
        for s in &mut self.insts {
            s.refresh(now_ms);
        }
        let cfg = self.passive;
        let mut ejector = std::mem::take(&mut self.insts[i].ejector);
        let verdict = ejector.record_failure(now_ms, cfg, |_| {
            may_eject(&self.insts, i, now_ms, cfg.max_ejection_percent)
        });
        self.insts[i].ejector = ejector;
        verdict
    }

    /// A probe of instance `i` passed now without flipping it: a passive
    /// ejection still running ends.
    pub fn probe_passed(&mut self, i: usize) {
        let now_ms = self.now_ms;
        self.insts[i].ejector.end(now_ms);
    }

    /// Whether instance `i` is passively ejected now.
    pub fn ejected(&self, i: usize) -> bool {
        self.insts[i].ejector.is_ejected(self.now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LatencyModel;

    fn pool() -> Vec<InstanceModel> {
        ["a", "b"]
            .iter()
            .map(|n| InstanceModel::new(*n, LatencyModel::Fixed(1.0)))
            .collect()
    }

    #[test]
    fn a_pick_holds_a_slot_until_finished() {
        let models = pool();
        let mut d = Decider::new(Algorithm::LeastConnections, &models, 1);
        let i = d.pick(None).unwrap();
        assert_eq!((d.in_flight(i), d.calls(i)), (1, 1));
        assert_eq!(d.pick(None), Some(1 - i), "the other one is idle");
        d.finish(i, Some(10.0), true);
        assert_eq!((d.in_flight(i), d.calls(i)), (0, 1));
        assert!(d.estimates(i).error_rate() > 0.0);
    }

    #[test]
    fn excluded_and_probed_down_instances_are_not_chosen() {
        let models = pool();
        let mut d = Decider::new(Algorithm::RoundRobin, &models, 1);
        for _ in 0..4 {
            assert_eq!(d.choose(None, &[0]), SelectOutcome::Picked(1));
        }
        d.set_health(1, false);
        assert_eq!(d.choose(None, &[0]), SelectOutcome::Down);
        assert_eq!(d.pick(None), Some(0));
        d.set_health(0, false);
        assert_eq!(d.choose(None, &[]), SelectOutcome::Down);
        let mut panicky = Decider::new(Algorithm::RoundRobin, &models, 1).panic(true);
        panicky.set_health(0, false);
        panicky.set_health(1, false);
        assert!(panicky.pick(None).is_some(), "panic mode tries them anyway");
    }

    #[test]
    fn passive_ejection_is_capped_ended_by_a_probe_and_tried_when_nothing_else_is_up() {
        let models: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| InstanceModel::new(*n, LatencyModel::Fixed(1.0)))
            .collect();
        let cfg = PassiveConfig {
            max_fails: 1,
            fail_timeout_ms: 10_000,
            max_ejection_percent: 50,
        };
        let mut off = Decider::new(Algorithm::RoundRobin, &models, 1);
        assert_eq!(off.fail(0), Verdict::Counted, "no passive setting: off");
        let mut d = Decider::new(Algorithm::RoundRobin, &models, 1).passive(cfg);
        assert_eq!(d.fail(0), Verdict::Ejected { until: 10_000 });
        assert_eq!(d.fail(1), Verdict::Capped, "1 of 3 at 50 %");
        for _ in 0..4 {
            let i = d.pick(None).unwrap();
            assert_ne!(i, 0, "ejected");
            d.finish(i, None, false);
        }
        d.advance(1_000);
        d.probe_passed(0);
        assert!(!d.ejected(0));
        assert_eq!(d.fail(1), Verdict::Ejected { until: 11_000 });
        d.set_health(0, false);
        d.set_health(2, false);
        assert_eq!(d.pick(None), Some(1), "ejected, but the only one up");
        d.set_health(1, true);
        assert!(d.ejected(1), "no flip: still ejected");
        d.set_health(1, false);
        d.set_health(1, true);
        assert!(!d.ejected(1), "back up: the ejection ended");
    }

    #[test]
    fn an_instance_back_up_ramps_its_weight_under_slow_start() {
        let models = pool();
        let mut d = Decider::new(Algorithm::WeightedRoundRobin, &models, 1).slow_start_ms(10_000);
        d.advance(5_000);
        d.set_health(1, false);
        d.set_health(1, true);
        let mut picked = [0; 2];
        for _ in 0..100 {
            let i = d.pick(None).unwrap();
            picked[i] += 1;
            d.finish(i, None, false);
        }
        assert!(picked[1] < 20, "b has just come back: {picked:?}");
        d.advance(10_000);
        let mut later = [0; 2];
        for _ in 0..100 {
            let i = d.pick(None).unwrap();
            later[i] += 1;
            d.finish(i, None, false);
        }
        assert_eq!(later, [50, 50], "ramped up after slow_start");
    }
}
