//! `max_concurrent: auto` end to end: three mock instances that each work
//! on 4 requests at a time (`capacity: 4`, 50 ms a request, the rest wait
//! in the mock's own queue, like a GPU batch), a pool that does not say so
//! (`max_concurrent: auto`), and 32 callers without pause — far more than
//! the 12 slots. The gateway learns each instance's limit from its latency:
//! the limits settle within one of 4, and the requests beyond them wait in
//! the gateway's admission queue instead of the instances'.

use crate::common::*;
use fulcrum::app::Running;
use fulcrum_mock::MockServer;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;

/// Three instances of 4 slots, 50 ms a request.
async fn mocks() -> Vec<MockServer> {
    batch_mocks(&[("gpu0", 4), ("gpu1", 4), ("gpu2", 4)], 50).await
}

async fn pool(m: &[MockServer]) -> Running {
    one_pool(
        m,
        "    algorithm: least_connections\n    max_concurrent: auto\n",
    )
    .await
}

/// The learned limits of the pool's members now.
fn limits(gw: &Running) -> Vec<u32> {
    gw.gateway.stats()[0]
        .instances
        .iter()
        .map(|m| {
            assert_eq!(
                m.max_concurrent, m.learned_limit,
                "the learned limit is the one in force"
            );
            m.learned_limit.expect("every member learns")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_settle_within_one_of_the_instances_capacity_of_4() {
    let m = mocks().await;
    let gw = pool(&m).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (done, tasks) = closed_loop(
        &format!("http://{}/infer", gw.proxy_addr),
        CLIENTS,
        stop.clone(),
    );

    // The limits every 100 ms for 15 s; the queue's length with them.
    let started = Instant::now();
    let mut seen: Vec<(f64, Vec<u32>, u32)> = vec![];
    let mut settled_from = None;
    while started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = started.elapsed().as_secs_f64();
        let l = limits(&gw);
        let queued = gw.gateway.stats()[0].queued;
        // Slow start doubles 1, 2, 4, 8 (a tick a second), then 8 falls
        // back to 4 (half of it) and a tick drains what 8 admitted:
        // settled from the 6th second.
        if t >= 6.0 && settled_from.is_none() {
            settled_from = Some((seen.len(), done.load(Relaxed), Instant::now()));
        }
        seen.push((t, l, queued));
    }
    let (from, done_before, since) = settled_from.unwrap();
    let rate = (done.load(Relaxed) - done_before) as f64 / since.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let trace: Vec<String> = seen
        .iter()
        .step_by(5)
        .map(|(t, l, q)| format!("{t:.1}s {l:?} q{q}"))
        .collect();
    eprintln!(
        "learned limits: {}; {rate:.0} req/s after 6 s",
        trace.join(", ")
    );
    for (t, l, _) in &seen[from..] {
        assert!(
            l.iter().all(|l| (3..=5).contains(l)),
            "at {t:.1}s the limits are {l:?}, not within one of 4: {trace:?}"
        );
    }
    // Beyond the 12 slots the callers wait in the gateway's queue.
    let queued: Vec<u32> = seen[from..].iter().map(|(_, _, q)| *q).collect();
    let mean_queued = queued.iter().sum::<u32>() as f64 / queued.len() as f64;
    assert!(
        mean_queued >= 10.0,
        "the gateway's queue held {mean_queued:.1} on average: {trace:?}"
    );
    // And the fleet still serves at about its capacity: 3 × 4 / 50 ms =
    // 240 req/s (at least 70 % of it: the limit dips to 3 at times, and
    // the machine is shared).
    assert!(rate >= 168.0, "{rate:.0} req/s: {trace:?}");
    gw.shutdown().await;
}
