//! Passive ejection must not outlive recovery nor empty a pool (issue #11,
//! finding 2), through the data plane's own code on paused time: pools
//! built from a config ([`Snapshot::build`]), failures recorded as the
//! attempt loop records them ([`feedback::failed`]), probes as the health
//! checker feeds them (`InstanceState::observe_probe`), instances chosen
//! with [`admission::acquire`].
//!
//! 1. `passive.max_ejection_percent` (default 50) caps the share of a pool
//!    that is ejected; the last instance in service is never ejected; a
//!    capped failure still counts.
//! 2. A passing active probe ends a running ejection.
//! 3. When every instance left is ejected but probes say it is up, the
//!    request is tried on those rather than refused with 503.

use fulcrum_dataplane::clock::{Clock, Rng};
use fulcrum_dataplane::http::ProxyError;
use fulcrum_dataplane::proxy::admission::{self, Env};
use fulcrum_dataplane::proxy::feedback;
use fulcrum_dataplane::runtime::PoolRuntime;
use fulcrum_dataplane::Snapshot;
use fulcrum_policy::retry::Failure;
use fulcrum_policy::RequestClass::Normal;
use std::sync::Arc;
use std::time::Duration;

/// A round-robin pool `p` of `n` instances with the retry
/// settings and `passive: { max_fails: 2, fail_timeout: 30s }` plus the
/// keys in `passive` (the default `max_ejection_percent` when empty).
fn pool(n: usize, passive: &str) -> Arc<PoolRuntime> {
    let instances: Vec<String> = (1..=n)
        .map(|i| format!("{{ endpoint: \"http://10.0.0.{i}:8000\" }}"))
        .collect();
    let yaml = format!(
        "pools:\n  p:\n    algorithm: round_robin\n    \
         retry: {{ tries: 3, on: [error, timeout, http_502, http_503], non_idempotent: true }}\n    \
         passive: {{ max_fails: 2, fail_timeout: 30s{passive} }}\n    instances: [ {} ]\n",
        instances.join(", ")
    );
    let cfg = fulcrum_config::parse(&yaml, &|_| None).expect("config");
    Snapshot::build(Arc::new(cfg), None, 0)
        .pool("p")
        .expect("pool p")
        .clone()
}

/// One failed try on member `i` (a refused connection), as the attempt
/// loop records it.
fn fail(pool: &PoolRuntime, i: usize, clock: &Clock) {
    let inst = &pool.members[i].inst;
    feedback::failed(
        pool,
        inst,
        Failure::ConnectError,
        false,
        Duration::ZERO,
        clock.now_ms(),
    );
}

/// One probe result for member `i`, as the health checker feeds it.
fn probe(pool: &PoolRuntime, i: usize, ok: bool, clock: &Clock) {
    let hc = &pool.cfg.health_check;
    pool.members[i].inst.observe_probe(
        ok,
        hc.failure_threshold,
        hc.recovery_threshold,
        clock.now_ms(),
    );
}

/// Probes until member `i` is marked down.
fn probed_down(pool: &PoolRuntime, i: usize, clock: &Clock) {
    while pool.members[i].inst.is_healthy() {
        probe(pool, i, false, clock);
    }
}

fn ejected(pool: &PoolRuntime, clock: &Clock) -> Vec<bool> {
    let now = clock.now_ms();
    pool.members
        .iter()
        .map(|m| m.inst.stats(now).ejected)
        .collect()
}

/// The member `acquire` chooses (its slot released at once), or the error.
async fn choose(
    pool: &Arc<PoolRuntime>,
    env: Env<'_>,
    excluded: &[usize],
) -> Result<usize, ProxyError> {
    admission::acquire(pool, env, excluded, None, Normal)
        .await
        .map(|(i, _slot)| i)
}

#[tokio::test(start_paused = true)]
async fn passive_ejection_takes_out_at_most_half_of_a_pool_and_never_its_last_instance() {
    let clock = Clock::new();
    for (n, most) in [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2)] {
        let p = pool(n, "");
        for i in 0..n {
            fail(&p, i, &clock);
            fail(&p, i, &clock);
        }
        let out = ejected(&p, &clock).iter().filter(|e| **e).count();
        assert_eq!(
            out, most,
            "{n} instances, each failing twice: {out} ejected"
        );
        for m in &p.members {
            assert_eq!(
                m.inst.stats(clock.now_ms()).failures,
                2,
                "every failure counted"
            );
        }
    }
    // The cap is the pool's setting.
    let all_but_one = pool(4, ", max_ejection_percent: 100");
    for i in 0..4 {
        fail(&all_but_one, i, &clock);
        fail(&all_but_one, i, &clock);
    }
    assert_eq!(ejected(&all_but_one, &clock), [true, true, true, false]);
    // The other instance down by probes: the last in service stays.
    let p = pool(2, "");
    probed_down(&p, 1, &clock);
    for _ in 0..10 {
        fail(&p, 0, &clock);
    }
    assert_eq!(ejected(&p, &clock), [false, false]);
}

#[tokio::test(start_paused = true)]
async fn a_capped_instance_is_ejected_by_its_next_failure_once_the_cap_allows() {
    let clock = Clock::new();
    let p = pool(3, "");
    fail(&p, 0, &clock);
    fail(&p, 0, &clock);
    fail(&p, 1, &clock);
    fail(&p, 1, &clock);
    assert_eq!(ejected(&p, &clock), [true, false, false], "1 of 3 at 50 %");
    tokio::time::advance(Duration::from_secs(1)).await;
    // Probes find 0 down, then back up: its ejection is over.
    probed_down(&p, 0, &clock);
    while !p.members[0].inst.is_healthy() {
        probe(&p, 0, true, &clock);
    }
    assert_eq!(ejected(&p, &clock), [false, false, false]);
    fail(&p, 1, &clock);
    assert_eq!(
        ejected(&p, &clock),
        [false, true, false],
        "its failures were counted: one more in the window ejects it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_passing_probe_ends_an_ejection_at_once() {
    let clock = Clock::new();
    let rng = Rng::seeded(1);
    let env = Env {
        clock: &clock,
        rng: &rng,
        events: &Default::default(),
    };
    let p = pool(2, "");
    fail(&p, 0, &clock);
    fail(&p, 0, &clock);
    assert_eq!(ejected(&p, &clock), [true, false]);
    // The instance restarted within a second and answers again; probes
    // never found it down, so nothing else would end the 30 s ejection.
    tokio::time::advance(Duration::from_millis(1_500)).await;
    for _ in 0..4 {
        assert_eq!(choose(&p, env, &[]).await, Ok(1));
    }
    probe(&p, 0, true, &clock);
    assert_eq!(ejected(&p, &clock), [false, false]);
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(choose(&p, env, &[]).await.unwrap());
    }
    assert!(seen.contains(&0), "back in rotation: {seen:?}");
    // A failed probe ends nothing.
    fail(&p, 0, &clock);
    fail(&p, 0, &clock);
    probe(&p, 0, false, &clock);
    assert_eq!(ejected(&p, &clock), [true, false]);
}

#[tokio::test(start_paused = true)]
async fn when_every_instance_left_is_ejected_but_up_it_is_tried_instead_of_a_503() {
    let clock = Clock::new();
    let rng = Rng::seeded(1);
    let env = Env {
        clock: &clock,
        rng: &rng,
        events: &Default::default(),
    };
    let p = pool(3, "");
    fail(&p, 0, &clock);
    fail(&p, 0, &clock);
    assert_eq!(ejected(&p, &clock), [true, false, false]);
    // Then probes find the two others down: only the ejected one is up.
    probed_down(&p, 1, &clock);
    probed_down(&p, 2, &clock);
    for _ in 0..3 {
        assert_eq!(choose(&p, env, &[]).await, Ok(0), "tried anyway");
    }
    // A retry that already tried it, or probes finding it down too: 503.
    let all_down = Err(ProxyError::AllDown { pool: "p".into() });
    assert_eq!(choose(&p, env, &[0]).await, all_down);
    probed_down(&p, 0, &clock);
    assert_eq!(choose(&p, env, &[]).await, all_down);
}

/// A `Retry-After` cool-down on every instance: tried anyway too, though
/// probes do not end a cool-down (the instance asked for the pause).
#[tokio::test(start_paused = true)]
async fn when_every_instance_is_cooling_down_it_is_tried_instead_of_a_503() {
    let clock = Clock::new();
    let rng = Rng::seeded(1);
    let env = Env {
        clock: &clock,
        rng: &rng,
        events: &Default::default(),
    };
    let p = pool(2, "");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("20"),
    );
    for m in &p.members {
        let status = http::StatusCode::SERVICE_UNAVAILABLE;
        feedback::answered(
            &p,
            &m.inst,
            status,
            &headers,
            Duration::ZERO,
            clock.now_ms(),
        );
    }
    assert_eq!(ejected(&p, &clock), [true, true]);
    probe(&p, 0, true, &clock);
    assert_eq!(
        ejected(&p, &clock),
        [true, true],
        "a probe does not end a cool-down"
    );
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(choose(&p, env, &[]).await.expect("tried anyway"));
    }
    seen.sort();
    assert_eq!(seen, [0, 0, 1, 1]);
}
