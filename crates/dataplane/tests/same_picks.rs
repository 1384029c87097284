//! The data plane and the simulator decide through the same view (issue
//! #10): one deterministic sequence of events, run through both, gets the
//! same picks.
//!
//! * **Data plane**: a pool built from a config ([`Snapshot::build`]),
//!   chosen from with [`admission::acquire`] (its seeded [`Rng`], its
//!   [`Clock`] on tokio's paused time, moved with `tokio::time::advance`),
//!   taught by [`feedback::answered`] / [`feedback::failed`] as the attempt
//!   loop calls them, probes through `InstanceState::observe_probe`, and
//!   slots released by dropping their guard.
//! * **Simulator**: a [`Decider`] over the same instances and seed — the
//!   code the simulator's event loop makes every decision with.
//!
//! The sequence holds requests' slots and releases them in another order,
//! ends them with latencies, 5xx answers, timeouts and refused connections,
//! retries a refused request elsewhere (the tried instance excluded), flips
//! instances' health (all primaries down, then everything: the backup tier
//! and panic mode), and moves the clock (latency estimates decay, slow
//! start ramps). Each run compares the whole sequence of outcomes
//! (`Picked(i)`, `Busy`, `Down`), hundreds of picks, and the state both
//! sides end with.
//!
//! With `passive` (some cases), every failure is also counted for passive
//! ejection on both sides — the data plane's `feedback::failed`, the
//! simulator's `Decider::fail` — under the pool's `max_ejection_percent`,
//! probes that pass end ejections, and when only ejected instances are
//! left they are tried anyway: the same picks throughout.
//!
//! Left out because the simulator does not model them (see
//! `fulcrum_sim`): `Retry-After` cool-downs, load reports other than its model's (for `resource_based`
//! the data plane is sent the report the model gives: in-flight over
//! capacity, before every decision), the admission queue's waiting
//! (`queue: { max: 0 }`: `Busy` is answered at once), config reloads.

use fulcrum_dataplane::clock::{Clock, Rng};
use fulcrum_dataplane::http::ProxyError;
use fulcrum_dataplane::proxy::admission::{self, Env};
use fulcrum_dataplane::proxy::feedback;
use fulcrum_dataplane::runtime::{load_report, InFlightGuard, PoolRuntime};
use fulcrum_dataplane::Snapshot;
use fulcrum_policy::passive::Verdict;
use fulcrum_policy::retry::Failure;
use fulcrum_policy::RequestClass::Normal;
use fulcrum_policy::{hash_bytes, Algorithm, Estimates, Priority, SelectOutcome};
use fulcrum_sim::{Decider, InstanceModel, LatencyModel};
use http::{HeaderMap, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// The policy's random stream, on both sides.
const SEED: u64 = 7;
/// Steps in the sequence.
const STEPS: usize = 2_000;
/// Distinct request keys (for `consistent_hash`).
const KEYS: u64 = 12;
/// A pool's `slow_start` where a case has one.
const SLOW_START_MS: u64 = 10_000;

/// The pool, as models: names are the endpoint URLs, so `consistent_hash`
/// hashes the same ids on both sides. Capacity only shapes the load the
/// instances report (for `resource_based`).
fn models() -> Vec<InstanceModel> {
    let m = |url: &str| InstanceModel::new(url, LatencyModel::Fixed(1.0));
    vec![
        m("http://10.0.0.1:8000")
            .weight(3)
            .max_concurrent(4)
            .capacity(4),
        m("http://10.0.0.2:8000")
            .weight(1)
            .max_concurrent(2)
            .capacity(2),
        m("http://10.0.0.3:8000")
            .weight(2)
            .max_concurrent(3)
            .capacity(2),
        m("http://10.0.0.4:8000/v1").weight(1).max_concurrent(2),
        m("http://10.0.0.5:8000")
            .priority(Priority::Low)
            .max_concurrent(2)
            .capacity(2),
        m("http://10.0.0.6:8000")
            .weight(2)
            .priority(Priority::Backup)
            .max_concurrent(2)
            .capacity(2),
    ]
}

/// Each instance's typical time to answer, ms (the script adds to it).
const BASE_MS: [u64; 6] = [20, 35, 25, 120, 40, 60];

/// One pool setting to compare under.
#[derive(Debug, Clone, Copy)]
struct Case {
    alg: Algorithm,
    slow_start_ms: u64,
    panic: bool,
    /// `passive: { max_fails: 2, fail_timeout: 1s }` (the default
    /// `max_ejection_percent`), else `max_fails: 0`.
    passive: bool,
}

impl Case {
    fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            slow_start_ms: 0,
            panic: false,
            passive: false,
        }
    }
}

/// How a held request ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Answered after its instance's base time plus `extra_ms`.
    Answered(StatusCode),
    /// No answer before the head timeout.
    Timeout,
    /// The connection was refused: no answer to time.
    Refused,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A request with this key: choose an instance and hold its slot.
    Request { key: u64 },
    /// A request whose first try is refused, retried on another instance
    /// (the first excluded), which it then holds.
    Retry { key: u64 },
    /// The held request at `nth` (modulo how many are held) ends.
    Finish { nth: usize, extra_ms: u64, end: End },
    /// The clock moves.
    Advance { ms: u64 },
    /// Probes find instance `inst` up or down.
    Health { inst: usize, up: bool },
    /// A probe of `inst`, which is up, passes (it ends a passive ejection).
    ProbePassed { inst: usize },
}

/// The sequence: a seeded mix of steps, with, halfway, every primary
/// down (the backup tier serves), then the backup as well (`Down`, or
/// panic mode), then all back. Also returns the steps of the requests
/// made while everything is down.
fn script(n_inst: usize) -> (Vec<Step>, std::ops::Range<usize>) {
    let mut r = fastrand::Rng::with_seed(2024);
    let mut up = vec![true; n_inst];
    let mut steps = Vec::with_capacity(STEPS + 40);
    let mut all_down = 0..0;
    for s in 0..STEPS {
        if s % 40 == 20 && up[(s / 40) % n_inst] {
            // (No draw from `r`: the rest of the sequence is unchanged.)
            steps.push(Step::ProbePassed {
                inst: (s / 40) % n_inst,
            });
        }
        if s == STEPS / 2 {
            let backup = n_inst - 1;
            for (i, u) in up.iter_mut().enumerate().filter(|(i, _)| *i != backup) {
                *u = false;
                steps.push(Step::Health { inst: i, up: false });
            }
            steps.extend((0..6).map(|k| Step::Request { key: k }));
            up[backup] = false;
            steps.push(Step::Health {
                inst: backup,
                up: false,
            });
            let from = steps.len();
            steps.extend((0..6).map(|k| Step::Request { key: k }));
            all_down = from..steps.len();
            steps.push(Step::Advance { ms: 2_000 });
            for (i, u) in up.iter_mut().enumerate() {
                *u = true;
                steps.push(Step::Health { inst: i, up: true });
            }
        }
        let step = match r.u32(0..100) {
            0..=37 => Step::Request {
                key: r.u64(0..KEYS),
            },
            38..=42 => Step::Retry {
                key: r.u64(0..KEYS),
            },
            43..=79 => Step::Finish {
                nth: r.usize(0..64),
                extra_ms: r.u64(0..40),
                end: match r.u32(0..20) {
                    0 => End::Timeout,
                    1 => End::Refused,
                    2 => End::Answered(StatusCode::SERVICE_UNAVAILABLE),
                    3 | 4 => End::Answered(StatusCode::INTERNAL_SERVER_ERROR),
                    _ => End::Answered(StatusCode::OK),
                },
            },
            80..=96 => Step::Advance {
                ms: if r.u32(0..5) == 0 {
                    r.u64(500..3_000)
                } else {
                    r.u64(1..50)
                },
            },
            _ => {
                let inst = r.usize(0..n_inst);
                up[inst] = !up[inst];
                Step::Health { inst, up: up[inst] }
            }
        };
        steps.push(step);
    }
    (steps, all_down)
}

fn key_hash(key: u64) -> u64 {
    hash_bytes(format!("key-{key}").as_bytes())
}

/// How long a request ending `end` on `inst` took to its answer (or, for a
/// timeout, waited).
fn took(inst: usize, extra_ms: u64, end: End) -> Duration {
    match end {
        End::Timeout => Duration::from_millis(1_000 + extra_ms),
        _ => Duration::from_millis(BASE_MS[inst] + extra_ms),
    }
}

/// A milliseconds figure as the data plane's feedback computes it from a
/// duration, so both sides' estimators see the same number.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every decision of one run: the step it came from and its outcome.
type Outcomes = Vec<(usize, SelectOutcome)>;

/// What each side ends with, per instance: in flight, calls, estimates,
/// passively ejected.
type EndState = Vec<(u32, u64, Estimates, bool)>;

fn yaml(case: Case, models: &[InstanceModel]) -> String {
    let passive = match case.passive {
        true => "{ max_fails: 2, fail_timeout: 1s }",
        false => "{ max_fails: 0 }",
    };
    let mut y = format!(
        "pools:\n  p:\n    algorithm: {}\n    queue: {{ max: 0 }}\n    passive: {passive}\n    \
         retry: {{ on: [error, timeout, http_503] }}\n    panic: {}\n",
        case.alg, case.panic
    );
    if case.slow_start_ms > 0 {
        y += &format!("    slow_start: {}ms\n", case.slow_start_ms);
    }
    if case.alg == Algorithm::ConsistentHash {
        y += "    hash_key: header:x-device\n";
    }
    y += "    instances:\n";
    for m in models {
        y += &format!(
            "      - {{ endpoint: \"{}\", weight: {}, priority: {}",
            m.name, m.weight, m.priority
        );
        if let Some(mc) = m.max_concurrent {
            y += &format!(", max_concurrent: {mc}");
        }
        y += " }\n";
    }
    y
}

/// The data plane's outcome as the selector's.
fn outcome(r: &Result<(usize, InFlightGuard), ProxyError>) -> SelectOutcome {
    match r {
        Ok((i, _)) => SelectOutcome::Picked(*i),
        Err(ProxyError::QueueFull { .. }) => SelectOutcome::Busy,
        Err(ProxyError::AllDown { .. }) => SelectOutcome::Down,
        Err(e) => panic!("unexpected admission error: {e}"),
    }
}

/// The sequence through a data-plane pool.
async fn run_dataplane(
    case: Case,
    models: &[InstanceModel],
    steps: &[Step],
) -> (Outcomes, EndState) {
    let cfg = fulcrum_config::parse(&yaml(case, models), &|_| None).expect("config");
    let snap = Snapshot::build(Arc::new(cfg), None, 0);
    let pool: Arc<PoolRuntime> = snap.pool("p").expect("pool p").clone();
    let urls: Vec<&str> = pool
        .members
        .iter()
        .map(|m| m.inst.endpoint.url.as_str())
        .collect();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(urls, names, "the pool's members, in the models' order");
    let (clock, rng) = (Clock::new(), Rng::seeded(SEED));
    let env = Env {
        clock: &clock,
        rng: &rng,
        events: &Default::default(),
    };
    let hc = &pool.cfg.health_check;
    // The instances' load reports, for resource_based: the model's.
    let report = |pool: &PoolRuntime| {
        if !case.alg.inputs().resources {
            return;
        }
        for (m, model) in pool.members.iter().zip(models) {
            let load = (f64::from(m.inst.in_flight()) / model.capacity.max(1) as f64).min(1.0);
            let header = format!("TEXT cpu_utilization={load}, mem_utilization={load}");
            let r = load_report::parse(&header).expect("a load report");
            m.inst.report_load(r, clock.now_ms());
        }
    };
    let mut held: Vec<(usize, InFlightGuard)> = Vec::new();
    let mut out = Vec::new();
    for (s, step) in steps.iter().enumerate() {
        match *step {
            Step::Request { key } => {
                report(&pool);
                let r = admission::acquire(&pool, env, &[], Some(key_hash(key)), Normal).await;
                out.push((s, outcome(&r)));
                held.extend(r.ok());
            }
            Step::Retry { key } => {
                report(&pool);
                let r = admission::acquire(&pool, env, &[], Some(key_hash(key)), Normal).await;
                out.push((s, outcome(&r)));
                let Ok((first, guard)) = r else { continue };
                let inst = &pool.members[first].inst;
                let head = pool.cfg.timeouts.response_header;
                feedback::failed(
                    &pool,
                    inst,
                    Failure::ConnectError,
                    false,
                    head,
                    clock.now_ms(),
                );
                drop(guard);
                report(&pool);
                let r = admission::acquire(&pool, env, &[first], Some(key_hash(key)), Normal).await;
                out.push((s, outcome(&r)));
                held.extend(r.ok());
            }
            Step::Finish { nth, extra_ms, end } => {
                if held.is_empty() {
                    continue;
                }
                let (i, guard) = held.remove(nth % held.len());
                let inst = &pool.members[i].inst;
                let (took, now) = (took(i, extra_ms, end), clock.now_ms());
                match end {
                    End::Answered(status) => {
                        feedback::answered(&pool, inst, status, &HeaderMap::new(), took, now);
                        // As the attempt loop: a status listed in `retry.on`
                        // is also a failure of the instance.
                        if pool.cfg.retry.on.statuses.contains(&status.as_u16()) {
                            let f = Failure::Status(status.as_u16());
                            feedback::failed(&pool, inst, f, true, took, now);
                        }
                    }
                    End::Timeout => {
                        feedback::failed(&pool, inst, Failure::Timeout, false, took, now);
                    }
                    End::Refused => {
                        feedback::failed(&pool, inst, Failure::ConnectError, false, took, now);
                    }
                }
                drop(guard);
            }
            Step::Advance { ms } => tokio::time::advance(Duration::from_millis(ms)).await,
            Step::Health { inst, up } => {
                let inst = &pool.members[inst].inst;
                let mut probes = 0;
                while inst.is_healthy() != up {
                    inst.observe_probe(
                        up,
                        hc.failure_threshold,
                        hc.recovery_threshold,
                        clock.now_ms(),
                    );
                    probes += 1;
                    assert!(probes <= 100, "the probes never flipped the instance");
                }
            }
            Step::ProbePassed { inst } => {
                let inst = &pool.members[inst].inst;
                let probed = inst.observe_probe(
                    true,
                    hc.failure_threshold,
                    hc.recovery_threshold,
                    clock.now_ms(),
                );
                assert_eq!(probed.flip, None, "the script probes only up instances");
            }
        }
    }
    let now = clock.now_ms();
    let end = pool
        .members
        .iter()
        .map(|m| {
            let i = &m.inst;
            let ejected = i.passively_ejected(now);
            (i.in_flight(), i.calls.load(Relaxed), i.estimates(), ejected)
        })
        .collect();
    (out, end)
}

/// How often the simulator's picks went to an ejected instance (every
/// other one being out), how many ejections it made and how many the cap
/// forbade.
#[derive(Debug, Default)]
struct Ejections {
    tried_anyway: usize,
    made: usize,
    capped: usize,
}

impl Ejections {
    fn count(&mut self, v: Verdict) {
        match v {
            Verdict::Ejected { .. } => self.made += 1,
            Verdict::Capped => self.capped += 1,
            Verdict::Counted => {}
        }
    }
}

/// The same sequence through the simulator's decisions.
fn run_sim(
    case: Case,
    models: &[InstanceModel],
    steps: &[Step],
    seed: u64,
) -> (Outcomes, EndState) {
    run_sim_counting(case, models, steps, seed).0
}

fn run_sim_counting(
    case: Case,
    models: &[InstanceModel],
    steps: &[Step],
    seed: u64,
) -> ((Outcomes, EndState), Ejections) {
    // The pool's passive setting as the data plane reads it, from the same YAML.
    let cfg = fulcrum_config::parse(&yaml(case, models), &|_| None).expect("config");
    let mut d = Decider::new(case.alg, models, seed)
        .slow_start_ms(case.slow_start_ms)
        .panic(case.panic)
        .passive(cfg.pools["p"].passive);
    let mut held: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    let mut counts = Ejections::default();
    let choose = |d: &mut Decider, key, excluded: &[usize], counts: &mut Ejections| {
        let o = d.choose(Some(key_hash(key)), excluded);
        if let SelectOutcome::Picked(i) = o {
            counts.tried_anyway += usize::from(d.ejected(i));
        }
        o
    };
    for (s, step) in steps.iter().enumerate() {
        match *step {
            Step::Request { key } => {
                let o = choose(&mut d, key, &[], &mut counts);
                out.push((s, o));
                if let SelectOutcome::Picked(i) = o {
                    held.push(i);
                }
            }
            Step::Retry { key } => {
                let o = choose(&mut d, key, &[], &mut counts);
                out.push((s, o));
                let SelectOutcome::Picked(first) = o else {
                    continue;
                };
                d.finish(first, None, true);
                counts.count(d.fail(first));
                let o = choose(&mut d, key, &[first], &mut counts);
                out.push((s, o));
                if let SelectOutcome::Picked(i) = o {
                    held.push(i);
                }
            }
            Step::Finish { nth, extra_ms, end } => {
                if held.is_empty() {
                    continue;
                }
                let i = held.remove(nth % held.len());
                let took = took(i, extra_ms, end);
                // As the data plane: a timeout, a refusal or a status
                // listed in `retry.on` (503 here) is the instance's failure.
                let failed = match end {
                    End::Answered(status) => {
                        d.finish(i, Some(ms(took)), status.as_u16() >= 500);
                        status == StatusCode::SERVICE_UNAVAILABLE
                    }
                    End::Timeout => {
                        d.finish(i, Some(ms(took)), true);
                        true
                    }
                    End::Refused => {
                        d.finish(i, None, true);
                        true
                    }
                };
                if failed {
                    counts.count(d.fail(i));
                }
            }
            Step::Advance { ms } => d.advance(ms),
            Step::Health { inst, up } => d.set_health(inst, up),
            Step::ProbePassed { inst } => d.probe_passed(inst),
        }
    }
    let end = (0..d.len())
        .map(|i| (d.in_flight(i), d.calls(i), d.estimates(i), d.ejected(i)))
        .collect();
    ((out, end), counts)
}

/// Where two runs first part, with a little context.
fn first_difference(a: &Outcomes, b: &Outcomes) -> Option<String> {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))?;
    let from = at.saturating_sub(3);
    Some(format!(
        "decision {at} (of {} / {}) differs:\n  data plane: {:?}\n  simulator:  {:?}",
        a.len(),
        b.len(),
        &a[from..(at + 3).min(a.len())],
        &b[from..(at + 3).min(b.len())],
    ))
}

/// Runs the sequence through both and compares.
async fn same_picks(case: Case) {
    let models = models();
    let (steps, all_down) = script(models.len());
    let (dp, dp_end) = run_dataplane(case, &models, &steps).await;
    let (sim, sim_end) = run_sim(case, &models, &steps, SEED);
    if let Some(diff) = first_difference(&dp, &sim) {
        panic!("{case:?}: the data plane and the simulator disagree at {diff}");
    }
    // The sequence exercises what it claims to.
    let count = |f: fn(&SelectOutcome) -> bool| dp.iter().filter(|(_, o)| f(o)).count();
    let picks = count(|o| matches!(o, SelectOutcome::Picked(_)));
    assert!(picks >= 600, "{case:?}: only {picks} picks");
    let busy = count(|o| *o == SelectOutcome::Busy);
    assert!(busy >= 50, "{case:?}: only {busy} Busy");
    let down = count(|o| *o == SelectOutcome::Down);
    assert!(down >= 6, "{case:?}: only {down} Down");
    // With everything down: refused, or tried anyway in panic mode.
    for (s, o) in dp.iter().filter(|(s, _)| all_down.contains(s)) {
        let panicked = matches!(o, SelectOutcome::Picked(_));
        assert_eq!(
            panicked, case.panic,
            "{case:?}: step {s} with all down: {o:?}"
        );
    }
    for i in 0..models.len() {
        assert!(
            dp.iter().any(|(_, o)| *o == SelectOutcome::Picked(i)),
            "{case:?}: instance {i} was never picked"
        );
    }
    // Both end with the same slots held; the call counts and estimates
    // agree wherever the data plane keeps them (calls' rejoin floor only
    // for least_calls, estimates only for the algorithms that read them).
    let inputs = case.alg.inputs();
    for (i, (d, s)) in dp_end.iter().zip(&sim_end).enumerate() {
        assert_eq!(d.0, s.0, "{case:?}: in flight on instance {i}");
        if inputs.calls {
            assert_eq!(d.1, s.1, "{case:?}: calls of instance {i}");
        }
        if inputs.latency {
            assert_eq!(d.2, s.2, "{case:?}: estimates of instance {i}");
        }
        assert_eq!(d.3, s.3, "{case:?}: instance {i} ejected");
    }
    // With passive ejection, the sequence ejects instances, hits the cap,
    // and reaches moments where only ejected ones are left (tried anyway).
    let (_, counts) = run_sim_counting(case, &models, &steps, SEED);
    if case.passive {
        let c = &counts;
        assert!(
            c.made >= 20 && c.capped >= 5 && c.tried_anyway >= 3,
            "{case:?}: {c:?}"
        );
    } else {
        assert_eq!(
            (counts.made, counts.capped, counts.tried_anyway),
            (0, 0, 0),
            "{case:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn round_robin() {
    same_picks(Case::new(Algorithm::RoundRobin)).await;
}

#[tokio::test(start_paused = true)]
async fn weighted_round_robin() {
    same_picks(Case::new(Algorithm::WeightedRoundRobin)).await;
}

#[tokio::test(start_paused = true)]
async fn least_connections() {
    same_picks(Case::new(Algorithm::LeastConnections)).await;
}

#[tokio::test(start_paused = true)]
async fn least_calls() {
    same_picks(Case::new(Algorithm::LeastCalls)).await;
}

#[tokio::test(start_paused = true)]
async fn response_time() {
    same_picks(Case::new(Algorithm::ResponseTime)).await;
}

#[tokio::test(start_paused = true)]
async fn resource_based() {
    same_picks(Case::new(Algorithm::ResourceBased)).await;
}

#[tokio::test(start_paused = true)]
async fn random() {
    same_picks(Case::new(Algorithm::Random)).await;
}

#[tokio::test(start_paused = true)]
async fn power_of_two() {
    same_picks(Case::new(Algorithm::PowerOfTwo)).await;
}

#[tokio::test(start_paused = true)]
async fn consistent_hash() {
    same_picks(Case::new(Algorithm::ConsistentHash)).await;
}

#[tokio::test(start_paused = true)]
async fn weighted_round_robin_with_slow_start() {
    same_picks(Case {
        slow_start_ms: SLOW_START_MS,
        ..Case::new(Algorithm::WeightedRoundRobin)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn random_with_slow_start_and_panic_mode() {
    same_picks(Case {
        slow_start_ms: SLOW_START_MS,
        panic: true,
        ..Case::new(Algorithm::Random)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn least_calls_with_panic_mode() {
    same_picks(Case {
        panic: true,
        ..Case::new(Algorithm::LeastCalls)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn round_robin_with_passive_ejection() {
    same_picks(Case {
        passive: true,
        ..Case::new(Algorithm::RoundRobin)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn least_calls_with_passive_ejection_and_panic_mode() {
    same_picks(Case {
        passive: true,
        panic: true,
        ..Case::new(Algorithm::LeastCalls)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn response_time_with_passive_ejection() {
    same_picks(Case {
        passive: true,
        ..Case::new(Algorithm::ResponseTime)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn weighted_round_robin_with_passive_ejection_and_slow_start() {
    same_picks(Case {
        passive: true,
        slow_start_ms: SLOW_START_MS,
        ..Case::new(Algorithm::WeightedRoundRobin)
    })
    .await;
}

/// The comparison is not vacuous: a simulator with another seed, with one
/// weight changed, without the pool's slow start or without its passive
/// ejection parts from the data plane.
#[tokio::test(start_paused = true)]
async fn a_different_seed_weight_or_slow_start_is_seen() {
    let models = models();
    let (steps, _) = script(models.len());
    let case = Case::new(Algorithm::PowerOfTwo);
    let (dp, _) = run_dataplane(case, &models, &steps).await;
    let (other_seed, _) = run_sim(case, &models, &steps, SEED + 1);
    assert!(first_difference(&dp, &other_seed).is_some());

    let case = Case::new(Algorithm::WeightedRoundRobin);
    let (dp, _) = run_dataplane(case, &models, &steps).await;
    let mut heavier = models.clone();
    heavier[1].weight += 1;
    let (other_weight, _) = run_sim(case, &heavier, &steps, SEED);
    assert!(first_difference(&dp, &other_weight).is_some());

    let slow = Case {
        slow_start_ms: SLOW_START_MS,
        ..case
    };
    let (dp, _) = run_dataplane(slow, &models, &steps).await;
    let (no_slow_start, _) = run_sim(case, &models, &steps, SEED);
    assert!(first_difference(&dp, &no_slow_start).is_some());

    let ejecting = Case {
        passive: true,
        ..Case::new(Algorithm::RoundRobin)
    };
    let (dp, _) = run_dataplane(ejecting, &models, &steps).await;
    let (no_ejection, _) = run_sim(Case::new(Algorithm::RoundRobin), &models, &steps, SEED);
    assert!(first_difference(&dp, &no_ejection).is_some());
}
