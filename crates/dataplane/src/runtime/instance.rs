//! Live state of one instance, shared by every pool it sits in.
//!
//! The request path only touches atomics here (in-flight, counters, the
//! health and ejection flags). The two state machines that change rarely —
//! active-probe hysteresis and passive ejection — sit behind small mutexes
//! that only probes and failures take; an ejection is decided under one
//! more lock, shared by all instances, so that the pool-wide cap
//! (`passive.max_ejection_percent`) is checked and kept in one step.

use super::histogram::Histogram;
use super::load_report::LoadReport;
use super::moments::Moments;
use super::queue::Waiters;
use super::window::{rate, Window};
use crate::upstream::Origin;
use fulcrum_config::Endpoint;
use fulcrum_policy::health::Hysteresis;
use fulcrum_policy::passive::{Ejector, PassiveConfig, Verdict};
use fulcrum_policy::{Estimates, Load};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Held while an ejection is decided and recorded: the cap reads every
/// member's ejection, so two instances failing at once must not both pass
/// it. Taken only by a failure that reaches `max_fails`.
static EJECTING: Mutex<()> = Mutex::new(());

#[derive(Debug)]
pub struct InstanceState {
    pub endpoint: Endpoint,
    /// How the client side reaches it: address, `Host`, TLS, idle connections.
    pub origin: Origin,
    /// Time to the response head of every answered try.
    pub latency: Histogram,
    /// How long each HTTP try held its in-flight slot (from the pick to
    /// the end of the response body, or to the try's failure): what a
    /// learned limit (`max_concurrent: auto`) is judged on. Recorded only
    /// for instances that learn one ([`InFlightGuard::timed`]). Exact
    /// sums, not a histogram: see [`Moments`].
    pub held: Moments,
    /// Tries and errors since start, and over the recent window
    /// (`stats.window`), recorded for every algorithm.
    pub window: Window,
    /// WebSockets tunnelled to this instance right now.
    websockets: AtomicU32,
    /// The admission queues of every pool this instance is in (set by
    /// each snapshot build), woken when a slot frees.
    pub waiters: arc_swap::ArcSwap<Vec<std::sync::Arc<Waiters>>>,
    in_flight: AtomicU32,
    requests: AtomicU64,
    failures: AtomicU64,
    ejections_total: AtomicU64,
    /// `Retry-After` cool-downs taken, since start.
    cooldowns_total: AtomicU64,
    /// Result of active probes (after hysteresis).
    healthy: AtomicBool,
    /// Set by an operator: no new requests.
    drained: AtomicBool,
    weight_override: AtomicU32,
    /// Clock ms until which passive ejection keeps the instance out.
    ejected_until: AtomicU64,
    /// Clock ms until which a `Retry-After` cool-down keeps it out.
    cool_until: AtomicU64,
    /// Rung when the instance is ejected, so that its prober looks at it
    /// again soon (a passing probe ends the ejection).
    pub ejected: Notify,
    hysteresis: Mutex<Hysteresis>,
    ejector: Mutex<Ejector>,
    /// Calls so far, for `least_calls`; a newcomer starts at its pools' minimum.
    pub calls: AtomicU64,
    /// Clock ms since when the instance is in service (for slow start);
    /// 0 for instances present when the gateway started.
    up_since: AtomicU64,
    /// Latency and error-rate estimates (recorded when an algorithm uses them).
    perf: Mutex<Estimates>,
    /// The last ORCA load report and when it arrived.
    load: Mutex<Option<(LoadReport, u64)>>,
    /// The concurrency limit learned for `max_concurrent: auto` (0 = none
    /// learned yet), stored by the control plane's limits task.
    learned_limit: AtomicU32,
}

impl InstanceState {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            origin: Origin::new(endpoint.clone()),
            endpoint,
            latency: Default::default(),
            held: Default::default(),
            window: Default::default(),
            websockets: AtomicU32::new(0),
            waiters: Default::default(),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            ejections_total: AtomicU64::new(0),
            cooldowns_total: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            drained: AtomicBool::new(false),
            weight_override: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            cool_until: AtomicU64::new(0),
            ejected: Notify::new(),
            hysteresis: Mutex::new(Hysteresis::default()),
            ejector: Mutex::new(Ejector::default()),
            calls: AtomicU64::new(0),
            up_since: AtomicU64::new(0),
            perf: Mutex::new(Estimates::default()),
            load: Mutex::new(None),
            learned_limit: AtomicU32::new(0),
        }
    }

    /// Marks the instance as entering service at `now_ms` (slow start).
    pub fn set_up_since(&self, now_ms: u64) {
        self.up_since.store(now_ms, Relaxed);
    }

    /// Since when the instance is in service (0 = since start-up).
    pub fn up_since_ms(&self) -> u64 {
        self.up_since.load(Relaxed)
    }

    /// Until when an ejection or cool-down keeps it out (0 = never).
    pub fn ejected_until_ms(&self) -> u64 {
        self.ejected_until
            .load(Relaxed)
            .max(self.cool_until.load(Relaxed))
    }

    /// Whether a passive ejection (not a cool-down) keeps it out at `now_ms`.
    pub fn passively_ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until.load(Relaxed)
    }

    /// Keeps the instance out until `until_ms` (a `Retry-After` cool-down
    /// asked at `now_ms`). Probes do not end it: the instance asked for
    /// the pause. True when no cool-down was running at `now_ms` (a new
    /// one starts, rather than a running one being extended).
    pub fn cool_down(&self, now_ms: u64, until_ms: u64) -> bool {
        let before = self.cool_until.fetch_max(until_ms, Relaxed);
        self.cooldowns_total.fetch_add(1, Relaxed);
        before <= now_ms && until_ms > now_ms
    }

    /// Whether a `Retry-After` cool-down keeps it out at `now_ms`.
    /// Keeps the instance out until `until_ms` because another gateway
    /// replica ejected it or was asked to back off by it (`registry.store:
    /// redis`): a cool-down, not counted as one taken here.
    pub fn hold_until(&self, until_ms: u64) {
        self.cool_until.fetch_max(until_ms, Relaxed);
    }

    pub fn cooling_down(&self, now_ms: u64) -> bool {
        now_ms < self.cool_until.load(Relaxed)
    }

    /// Cool-downs taken since start (`fulcrum_instance_cooldowns_total`).
    pub fn cooldowns(&self) -> u64 {
        self.cooldowns_total.load(Relaxed)
    }

    /// Records how long a try took to its response head, and whether it
    /// failed (the policy's estimators, [`Estimates::observe`]).
    pub fn observe(&self, latency_ms: Option<f64>, failed: bool, now_ms: u64) {
        self.perf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(latency_ms, failed, now_ms);
    }

    /// The latency and error-rate estimates now.
    pub fn estimates(&self) -> Estimates {
        *self.perf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores an ORCA load report received at `now_ms`.
    pub fn report_load(&self, report: LoadReport, now_ms: u64) {
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = Some((report, now_ms));
    }

    /// The last load report and when it came, stale or not (the view
    /// decides whether it is still fresh).
    pub fn load(&self) -> Option<Load> {
        let l = self.load.lock().unwrap_or_else(|e| e.into_inner());
        l.as_ref().map(|(r, at)| Load {
            cpu: r.cpu,
            mem: r.mem,
            at_ms: *at,
        })
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// May new requests go here at `now_ms` (health, drain and ejection)?
    pub fn usable(&self, now_ms: u64) -> bool {
        self.healthy.load(Relaxed)
            && !self.drained.load(Relaxed)
            && now_ms >= self.ejected_until_ms()
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Relaxed)
    }

    pub fn set_drained(&self, drained: bool) {
        self.drained.store(drained, Relaxed);
    }

    /// Counts an open WebSocket until the returned guard drops.
    pub fn websocket_opened(self: &std::sync::Arc<Self>) -> WebSocketGuard {
        self.websockets.fetch_add(1, Relaxed);
        WebSocketGuard(self.clone())
    }

    /// An operator's weight for this instance, replacing the configured one
    /// (0 = none).
    pub fn weight_override(&self) -> Option<u32> {
        Some(self.weight_override.load(Relaxed)).filter(|w| *w > 0)
    }

    pub fn set_weight_override(&self, w: Option<u32>) {
        self.weight_override.store(w.unwrap_or(0), Relaxed);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// The limit learned for `max_concurrent: auto`, once there is one.
    pub fn learned_limit(&self) -> Option<u32> {
        Some(self.learned_limit.load(Relaxed)).filter(|l| *l > 0)
    }

    /// Stores a learned limit; when it rose, the requests waiting in the
    /// instance's pools look for the new room at once.
    pub fn set_learned_limit(&self, l: u32) {
        let before = self.learned_limit.swap(l, Relaxed);
        if l > before && before > 0 {
            for w in self.waiters.load().iter() {
                w.wake_one();
            }
        }
    }

    /// Takes one in-flight slot if that keeps the instance at or below
    /// `max`. Exact under races: a compare-and-swap, never a load-then-add.
    pub fn try_acquire(&self, max: Option<u32>) -> bool {
        let ok = match max {
            None => {
                self.in_flight.fetch_add(1, Relaxed);
                true
            }
            Some(m) => self
                .in_flight
                .fetch_update(Relaxed, Relaxed, |n| (n < m).then_some(n + 1))
                .is_ok(),
        };
        if ok {
            self.requests.fetch_add(1, Relaxed);
            self.calls.fetch_add(1, Relaxed);
        }
        ok
    }

    pub fn release(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Records a failed try. When it reaches `max_fails`, `may_eject` (the
    /// pool's cap, `fulcrum_policy::passive::may_eject`) decides whether
    /// the instance is ejected; it is asked, and the ejection recorded,
    /// under one lock shared by every instance.
    pub fn record_failure(
        &self,
        now_ms: u64,
        cfg: PassiveConfig,
        may_eject: impl FnOnce() -> bool,
    ) -> Verdict {
        self.failures.fetch_add(1, Relaxed);
        let mut ej = self.ejector.lock().unwrap_or_else(|e| e.into_inner());
        let verdict = ej.record_failure(now_ms, cfg, |until| {
            let _one_at_a_time = EJECTING.lock().unwrap_or_else(|e| e.into_inner());
            let ok = may_eject();
            if ok {
                self.ejected_until.store(until, Relaxed);
            }
            ok
        });
        if let Verdict::Ejected { .. } = verdict {
            self.ejections_total.fetch_add(1, Relaxed);
            self.ejected.notify_one();
        }
        verdict
    }

    /// Whether probes run at the normal interval at `now_ms`: up with no
    /// failed probe since ([`Hysteresis::settled`]) and not passively
    /// ejected — an ejected instance is probed at the fast interval, so a
    /// passing probe lets it back soon.
    pub fn probe_settled(&self, now_ms: u64) -> bool {
        self.hysteresis
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .settled()
            && !self.passively_ejected(now_ms)
    }

    /// Feeds one active-probe result through the hysteresis. A passing
    /// probe also ends a running passive ejection (Envoy's
    /// `successful_active_health_check_uneject_host`): the instance answers
    /// again, whatever the requests that failed on it said. A `Retry-After`
    /// cool-down is kept, unless the instance flips back up.
    pub fn observe_probe(
        &self,
        ok: bool,
        failure_threshold: u32,
        recovery_threshold: u32,
        now_ms: u64,
    ) -> Probed {
        let mut h = self.hysteresis.lock().unwrap_or_else(|e| e.into_inner());
        let flip = h.observe(ok, failure_threshold, recovery_threshold);
        let mut ended_ejection_ms = None;
        if ok {
            let mut ej = self.ejector.lock().unwrap_or_else(|e| e.into_inner());
            ended_ejection_ms = ej.end(now_ms);
            if ended_ejection_ms.is_some() {
                // Ended now: slow start, if any, ramps from here.
                self.ejected_until.store(now_ms, Relaxed);
            }
        }
        if let Some(up) = flip {
            if up {
                // Back in service now: any cool-down is over too, and slow
                // start ramps from here.
                self.cool_until.store(0, Relaxed);
                self.ejected_until.store(0, Relaxed);
                self.up_since.store(now_ms.max(1), Relaxed);
            }
            self.healthy.store(up, Relaxed);
        }
        Probed {
            flip,
            ended_ejection_ms,
        }
    }

    pub fn stats(&self, now_ms: u64) -> InstanceStats {
        let until = self.ejected_until_ms();
        let (tries, errors) = self.window.totals();
        InstanceStats {
            endpoint: self.endpoint.url.clone(),
            healthy: self.is_healthy(),
            drained: self.is_drained(),
            ejected: now_ms < until,
            ejected_for_ms: until.saturating_sub(now_ms),
            cooling_down: self.cooling_down(now_ms),
            in_flight: self.in_flight(),
            requests: self.requests.load(Relaxed),
            failures: self.failures.load(Relaxed),
            ejections: self.ejections_total.load(Relaxed),
            idle_connections: self.origin.conns.idle(),
            weight_override: self.weight_override(),
            open_websockets: self.websockets.load(Relaxed),
            errors,
            error_rate: rate(errors, tries),
            latency_p50_ms: self.latency.quantile_ms(0.50),
            latency_p95_ms: self.latency.quantile_ms(0.95),
            latency_p99_ms: self.latency.quantile_ms(0.99),
        }
    }
}

/// What one active-probe result changed ([`InstanceState::observe_probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    /// `Some(up)` when the instance flipped.
    pub flip: Option<bool>,
    /// The probe passed and ended a passive ejection that had this long
    /// (ms) still to run.
    pub ended_ejection_ms: Option<u64>,
}

/// A point-in-time copy of an instance's counters, for the admin plane.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct InstanceStats {
    pub endpoint: String,
    pub healthy: bool,
    pub drained: bool,
    /// Out of service now: passively ejected or cooling down (see
    /// `cooling_down`), for `ejected_for_ms` more.
    pub ejected: bool,
    pub ejected_for_ms: u64,
    /// Out because it answered 429/503 with `Retry-After`.
    pub cooling_down: bool,
    pub in_flight: u32,
    pub requests: u64,
    pub failures: u64,
    pub ejections: u64,
    /// Keep-alive connections to the instance waiting for a request.
    pub idle_connections: usize,
    /// An operator's weight replacing the configured one.
    pub weight_override: Option<u32>,
    /// WebSockets open through the gateway to this instance (also counted in `in_flight`).
    pub open_websockets: u32,
    /// Tries since start that failed in the instance's fault (no response
    /// head, a status listed in `retry.on`, an unasked `101`) or were
    /// answered with a 5xx status (see `runtime::window`).
    pub errors: u64,
    /// `errors` over the tries since start that got a response head or
    /// failed in the instance's fault, for every algorithm (the recent
    /// one is `window.error_rate`).
    pub error_rate: f64,
    /// Time to response head, since start-up.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// Decrements the open-WebSocket count when dropped.
#[derive(Debug)]
pub struct WebSocketGuard(std::sync::Arc<InstanceState>);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.0.websockets.fetch_sub(1, Relaxed);
    }
}

/// Holds one in-flight slot; releasing it on drop means a cancelled
/// request, a dropped response body or a panic all give the slot back, and
/// wakes a request queued in any pool the instance belongs to.
///
/// A timed guard also records how long the slot was held
/// ([`InstanceState::held`]) when it is given back.
#[derive(Debug)]
pub struct InFlightGuard {
    inst: std::sync::Arc<InstanceState>,
    since: Option<tokio::time::Instant>,
}

impl InFlightGuard {
    pub fn new(inst: std::sync::Arc<InstanceState>) -> Self {
        Self { inst, since: None }
    }

    /// A guard that records the time the slot is held, from `since`.
    pub fn timed(inst: std::sync::Arc<InstanceState>, since: tokio::time::Instant) -> Self {
        Self {
            inst,
            since: Some(since),
        }
    }

    /// Stops timing: the slot now holds something that is not one
    /// request's work (a WebSocket tunnel, open for as long as its caller
    /// talks), which would only mislead a learned limit.
    pub fn untime(&mut self) {
        self.since = None;
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(since) = self.since {
            let held = tokio::time::Instant::now().saturating_duration_since(since);
            self.inst.held.record_us(held.as_micros() as u64);
        }
        self.inst.release();
        for w in self.inst.waiters.load().iter() {
            w.wake_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn inst() -> InstanceState {
        InstanceState::new(fulcrum_config::parse_endpoint("http://127.0.0.1:1").unwrap())
    }

    #[test]
    fn max_concurrent_is_never_exceeded_under_races() {
        let i = Arc::new(inst());
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (i, peak) = (i.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if i.try_acquire(Some(3)) {
                            peak.fetch_max(i.in_flight(), Relaxed);
                            i.release();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Relaxed) <= 3);
        assert_eq!(i.in_flight(), 0);
    }

    #[test]
    fn the_last_load_report_is_kept_with_its_arrival_time() {
        // Whether it is still fresh is the view's rule (policy::estimate).
        let i = inst();
        assert_eq!(i.load(), None);
        let r = crate::runtime::load_report::parse("TEXT cpu_utilization=0.7").unwrap();
        i.report_load(r, 1_000);
        let l = i.load().unwrap();
        assert_eq!((l.cpu, l.at_ms), (Some(0.7), 1_000));
    }

    #[test]
    fn entering_service_and_ejections_are_the_slow_start_anchors() {
        let i = inst();
        assert_eq!((i.up_since_ms(), i.ejected_until_ms()), (0, 0));
        i.set_up_since(10_000);
        i.cool_down(0, 25_000);
        assert_eq!((i.up_since_ms(), i.ejected_until_ms()), (10_000, 25_000));
        assert_eq!(
            fulcrum_policy::slow_start::weight(10, 30_000, i.up_since_ms(), 0, 10_000),
            100,
            "ramps from a tenth of the scaled weight"
        );
    }

    fn cfg(max_fails: u32, fail_timeout_ms: u64) -> PassiveConfig {
        PassiveConfig {
            max_fails,
            fail_timeout_ms,
            max_ejection_percent: 50,
        }
    }

    /// The cap allows it.
    fn allow() -> bool {
        true
    }

    #[test]
    fn passing_the_recovery_probes_lifts_a_running_ejection() {
        let i = inst();
        let cfg = cfg(1, 60_000);
        assert_eq!(
            i.record_failure(0, cfg, allow),
            Verdict::Ejected { until: 60_000 }
        );
        assert_eq!(i.observe_probe(false, 1, 2, 0).flip, Some(false));
        assert_eq!(i.observe_probe(true, 1, 2, 0).flip, None);
        assert!(!i.usable(10), "down by probes");
        assert_eq!(i.observe_probe(true, 1, 2, 0).flip, Some(true));
        assert!(
            i.usable(10),
            "up after recovery_threshold probes, despite the 60 s ejection"
        );
    }

    #[test]
    fn one_passing_probe_ends_a_passive_ejection_but_not_a_cool_down() {
        let i = inst();
        assert!(i.probe_settled(0));
        i.record_failure(0, cfg(1, 60_000), allow);
        assert!(!i.usable(1_000) && i.passively_ejected(1_000));
        assert!(!i.probe_settled(1_000), "probed at the fast interval");
        assert_eq!(
            i.observe_probe(true, 3, 2, 1_000),
            Probed {
                flip: None,
                ended_ejection_ms: Some(59_000)
            }
        );
        assert!(i.usable(1_000) && i.probe_settled(1_000));
        assert_eq!(
            i.ejected_until_ms(),
            1_000,
            "ended now: slow start from here"
        );
        assert_eq!(i.observe_probe(true, 3, 2, 2_000).ended_ejection_ms, None);
        assert!(i.cool_down(0, 10_000), "a new cool-down");
        assert!(!i.cool_down(1, 10_000), "one running is not new");
        assert_eq!(i.observe_probe(true, 3, 2, 3_000).ended_ejection_ms, None);
        assert!(!i.usable(3_000), "the instance asked for the pause");
        assert!(i.probe_settled(3_000));
        assert!(i.usable(10_000));
        // A failed probe ends nothing.
        i.record_failure(20_000, cfg(1, 60_000), allow);
        assert_eq!(i.observe_probe(false, 3, 2, 21_000).ended_ejection_ms, None);
        assert!(!i.usable(21_000));
    }

    #[test]
    fn an_ejection_the_cap_forbids_is_not_made_but_the_failure_counts() {
        let i = inst();
        let cfg = cfg(2, 1_000);
        assert_eq!(
            i.record_failure(10, cfg, || unreachable!()),
            Verdict::Counted
        );
        assert_eq!(i.record_failure(20, cfg, || false), Verdict::Capped);
        assert!(i.usable(30));
        let s = i.stats(30);
        assert_eq!((s.failures, s.ejections, s.ejected), (2, 0, false));
        assert_eq!(
            i.record_failure(40, cfg, allow),
            Verdict::Ejected { until: 1_040 }
        );
        assert_eq!(i.stats(50).ejections, 1);
    }

    #[test]
    fn ejection_makes_the_instance_unusable_until_it_expires() {
        let i = inst();
        let cfg = cfg(2, 1000);
        assert!(i.usable(0));
        assert_eq!(i.record_failure(10, cfg, allow), Verdict::Counted);
        assert_eq!(
            i.record_failure(20, cfg, allow),
            Verdict::Ejected { until: 1020 }
        );
        assert!(!i.usable(500));
        assert!(i.usable(1020));
        assert_eq!(i.stats(500).ejections, 1);
    }
}
