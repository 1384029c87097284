//! Issue #12's must-show for the windowed stats: after an incident (one
//! instance 20× slower for 30 s, then healed), the windowed p99 and shares
//! return to normal within the window while the since-start numbers keep
//! the history.
//!
//! Deterministic: two pools built from a config ([`Snapshot::build`]),
//! each request chosen with [`admission::acquire`] (seeded [`Rng`], the
//! [`Clock`] on tokio's paused time) and recorded with
//! [`feedback::answered`] and [`feedback::counted`] as the attempt loop
//! calls them, with latencies from a seeded generator; the numbers are
//! read from [`stats::pools`], the view `/api/v1/pools` serves.
//!
//! * `round_robin` keeps sending the slow instance its third, so its
//!   windowed p99 shows the incident (~20×) and then forgets it, while the
//!   since-start p99 keeps it.
//! * `response_time` (P2C over peak-EWMA) moves traffic away from it, so
//!   its windowed share drops and comes back, while the since-start share
//!   keeps the dip. It still tries the slow instance now and then (its
//!   estimate decays with τ = 10 s until it is tried again), and those
//!   slow answers are over 1 % of its few tries: its windowed p99 shows
//!   them too.

use fulcrum_dataplane::clock::{Clock, Rng};
use fulcrum_dataplane::proxy::admission::{self, Env};
use fulcrum_dataplane::proxy::feedback;
use fulcrum_dataplane::runtime::stats::{self, PoolStats};
use fulcrum_dataplane::Snapshot;
use fulcrum_policy::RequestClass::Normal;
use http::{HeaderMap, StatusCode};
use std::sync::Arc;
use std::time::Duration;

const YAML: &str = "
stats: { window: 60s }
passive: { max_fails: 0 }
pools:
  rr:
    algorithm: round_robin
    instances: [ { endpoint: 'http://10.0.0.1:8000' }, { endpoint: 'http://10.0.0.2:8000' }, { endpoint: 'http://10.0.0.3:8000' } ]
  rt:
    algorithm: response_time
    instances: [ { endpoint: 'http://10.0.1.1:8000' }, { endpoint: 'http://10.0.1.2:8000' }, { endpoint: 'http://10.0.1.3:8000' } ]
";

/// One request every this many ms, to each pool.
const EVERY_MS: u64 = 100;
/// The incident: instance 0 of each pool is 20× slower from..until (ms).
const INCIDENT: std::ops::Range<u64> = 60_000..90_000;
const SLOWER: u64 = 20;

/// The gateway's side of the scenario, driven a request at a time.
struct Scenario {
    snap: Snapshot,
    clock: Clock,
    rng: Rng,
    events: fulcrum_dataplane::runtime::events::Events,
    latency: fastrand::Rng,
}

impl Scenario {
    fn new() -> Self {
        let cfg = fulcrum_config::parse(YAML, &|_| None).expect("config");
        Self {
            snap: Snapshot::build(Arc::new(cfg), None, 0),
            clock: Clock::new(),
            rng: Rng::seeded(12),
            events: Default::default(),
            latency: fastrand::Rng::with_seed(12),
        }
    }

    /// Runs traffic until the clock reads `until_ms`.
    async fn run_until(&mut self, until_ms: u64) {
        while self.clock.now_ms() < until_ms {
            tokio::time::advance(Duration::from_millis(EVERY_MS)).await;
            for name in ["rr", "rt"] {
                self.one_request(name).await;
            }
        }
    }

    /// One request to pool `name`: chosen, answered 200 after 8–12 ms (×20
    /// on instance 0 during the incident), recorded, its slot released.
    async fn one_request(&mut self, name: &str) {
        let pool = self.snap.pool(name).expect("pool").clone();
        let env = Env {
            clock: &self.clock,
            rng: &self.rng,
            events: &self.events,
        };
        let (slot, guard) = admission::acquire(&pool, env, &[], None, Normal)
            .await
            .expect("an instance");
        let now = self.clock.now_ms();
        let mut us = self.latency.u64(8_000..=12_000);
        if slot == 0 && INCIDENT.contains(&now) {
            us *= SLOWER;
        }
        let (inst, took) = (&pool.members[slot].inst, Duration::from_micros(us));
        let ok = StatusCode::OK;
        feedback::answered(&pool, inst, ok, &HeaderMap::new(), took, now);
        feedback::counted(inst, Some((ok, took)), false, now);
        drop(guard);
    }

    fn pool(&self, name: &str) -> PoolStats {
        stats::pools(&self.snap, self.clock.now_ms())
            .into_iter()
            .find(|p| p.name == name)
            .expect("pool in stats")
    }
}

fn window_p99(p: &PoolStats, i: usize) -> f64 {
    p.instances[i].window.p99_ms.expect("answers in the window")
}

fn since_start_p99(p: &PoolStats, i: usize) -> f64 {
    p.instances[i].stats.latency_p99_ms.expect("answers")
}

#[tokio::test(start_paused = true)]
async fn after_an_incident_the_window_forgets_it_and_since_start_keeps_it() {
    let mut s = Scenario::new();

    // Before: everyone answers in 8–12 ms and gets a third.
    s.run_until(INCIDENT.start).await;
    let (rr, rt) = (s.pool("rr"), s.pool("rt"));
    let normal = window_p99(&rr, 0);
    assert!((11.0..=13.0).contains(&normal), "p99 before: {normal}");
    for m in &rr.instances {
        assert_eq!(m.window.secs, 60);
        assert!((m.window.share - 1.0 / 3.0).abs() < 0.01, "{:?}", m.window);
        assert!((m.window.rps - 10.0 / 3.0).abs() < 0.1, "{:?}", m.window);
    }
    // P2C over peak-EWMA estimates at light load is uneven, but sends
    // every instance a good part.
    let rt_before: Vec<f64> = rt.instances.iter().map(|m| m.window.share).collect();
    assert!(rt_before.iter().all(|s| *s > 0.2), "{rt_before:?}");
    let rt_since_before = rt.instances[0].share;

    // The incident's last moment: round robin still sends the slow
    // instance its third, and its windowed p99 is ~20×; response time
    // has moved traffic away from it.
    s.run_until(INCIDENT.end - 1).await;
    let (rr, rt) = (s.pool("rr"), s.pool("rt"));
    let slow = window_p99(&rr, 0);
    assert!(
        slow >= 0.9 * SLOWER as f64 * 10.0 && slow <= 1.1 * SLOWER as f64 * 12.0,
        "windowed p99 during the incident: {slow} ms (before: {normal})"
    );
    assert!(window_p99(&rr, 1) <= 13.0, "the others are not slow");
    assert!(
        (rr.instances[0].window.share - 1.0 / 3.0).abs() < 0.01,
        "{:?}",
        rr.instances[0].window
    );
    let dipped = &rt.instances[0].window;
    assert!(
        dipped.share < 0.2 && dipped.share < rt_before[0] / 2.0,
        "response_time kept sending the slow instance {dipped:?} (before: {rt_before:?})"
    );
    assert!(
        dipped.p99_ms.is_some_and(|p| p >= 150.0),
        "the slow answers it did get show: {dipped:?}"
    );

    // One window after healing: the windowed p99 is back to normal, the
    // since-start p99 keeps the incident (a fifth of the slow instance's
    // answers were slow).
    s.run_until(INCIDENT.end + 60_000).await;
    let rr = s.pool("rr");
    let healed = window_p99(&rr, 0);
    assert!(healed <= 13.0, "windowed p99 after: {healed} ms");
    let history = since_start_p99(&rr, 0);
    assert!(
        history >= 0.9 * SLOWER as f64 * 10.0,
        "since-start p99 forgot the incident: {history} ms"
    );
    let w = &rr.instances[0].window;
    assert!((w.rps - 10.0 / 3.0).abs() < 0.1, "{w:?}");

    // response_time takes the instance back once its estimate has
    // decayed below the others' (τ = 10 s after its last slow answer, up
    // to ln 20 × τ ≈ 30 s after healing), so its share is back one window
    // after that; since start, the dip stays.
    s.run_until(INCIDENT.end + 30_000 + 60_000).await;
    let rt = s.pool("rt");
    for m in &rt.instances {
        assert!(m.window.share > 0.2, "not back to normal: {:?}", m.window);
        assert!(m.window.p99_ms.is_some_and(|p| p <= 13.0), "{:?}", m.window);
    }
    let (recent, kept) = (rt.instances[0].window.share, rt.instances[0].share);
    assert!(recent > 0.3, "the slow instance's share: {recent}");
    assert!(
        kept < rt_since_before - 0.1 && kept < recent - 0.1,
        "the since-start share forgot the dip: {kept} (before {rt_since_before}, recent {recent})"
    );
}
