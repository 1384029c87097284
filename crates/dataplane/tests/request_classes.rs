//! Request classes in the admission queue, on paused time: a freed slot
//! goes to the highest waiting class (arrival order within a class), a
//! full queue gives the newest `batch` request's place to a higher class,
//! and `queue.reserve` keeps slots from `batch`.

use fulcrum_dataplane::clock::{Clock, Rng};
use fulcrum_dataplane::http::ProxyError;
use fulcrum_dataplane::proxy::admission::{acquire, Env};
use fulcrum_dataplane::runtime::{InFlightGuard, PoolRuntime};
use fulcrum_dataplane::Snapshot;
use fulcrum_policy::RequestClass::{self, Batch, Interactive, Normal};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn pool(queue: &str, max_concurrent: u32) -> Arc<PoolRuntime> {
    let yaml = format!(
        "pools:\n  p:\n    queue: {queue}\n    instances: [ {{ endpoint: \"http://127.0.0.1:1\", max_concurrent: {max_concurrent} }} ]\n"
    );
    let cfg = fulcrum_config::parse(&yaml, &|_| None).unwrap();
    Snapshot::build(Arc::new(cfg), None, 0).pools[0].clone()
}

async fn take(p: &Arc<PoolRuntime>, class: RequestClass) -> Result<InFlightGuard, ProxyError> {
    static RNG: Rng = Rng::Thread;
    let clock = Clock::new();
    let env = Env {
        clock: &clock,
        rng: &RNG,
        events: &Default::default(),
    };
    acquire(p, env, &[], None, class).await.map(|(_, g)| g)
}

/// Waits in `p`'s queue from now on; records `name` when served, and
/// holds the slot for a second.
fn waiter(
    p: &Arc<PoolRuntime>,
    class: RequestClass,
    name: &'static str,
    served: &Arc<Mutex<Vec<&'static str>>>,
) -> tokio::task::JoinHandle<Result<(), ProxyError>> {
    let (p, served) = (p.clone(), served.clone());
    tokio::spawn(async move {
        let g = take(&p, class).await?;
        served.lock().unwrap().push(name);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(g);
        Ok(())
    })
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn rejections(p: &PoolRuntime, class: RequestClass) -> [u64; 3] {
    std::array::from_fn(|r| p.counters.queue_rejections[class.index()][r].load(Relaxed))
}

#[tokio::test(start_paused = true)]
async fn a_freed_slot_goes_to_the_highest_waiting_class_then_in_arrival_order() {
    let p = pool("{ max: 10, timeout: 30s }", 1);
    let held = take(&p, Normal).await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = vec![];
    for (class, name) in [
        (Batch, "batch0"),
        (Normal, "normal0"),
        (Batch, "batch1"),
        (Interactive, "interactive0"),
        (Normal, "normal1"),
        (Interactive, "interactive1"),
    ] {
        tasks.push(waiter(&p, class, name, &served));
        settle().await;
    }
    assert_eq!(p.waiters.waiting.load(Relaxed), 6);
    let by_class: Vec<u32> = p.waiters.by_class.iter().map(|n| n.load(Relaxed)).collect();
    assert_eq!(by_class, [2, 2, 2]);
    drop(held);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        *served.lock().unwrap(),
        [
            "interactive0",
            "interactive1",
            "normal0",
            "normal1",
            "batch0",
            "batch1"
        ]
    );
    let waited = |c: RequestClass| {
        p.counters.queue_wait[c.index()]
            .read()
            .0
            .iter()
            .map(|b| b.1)
            .sum::<u64>()
    };
    assert_eq!(
        (waited(Interactive), waited(Normal), waited(Batch)),
        (2, 2, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_sheds_its_newest_batch_request_and_refuses_the_rest() {
    let p = pool("{ max: 2, timeout: 30s }", 1);
    let held = take(&p, Normal).await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let b0 = waiter(&p, Batch, "batch0", &served);
    settle().await;
    let b1 = waiter(&p, Batch, "batch1", &served);
    settle().await;
    // Full: a batch newcomer is refused at once.
    assert_eq!(
        take(&p, Batch).await.unwrap_err(),
        ProxyError::QueueFull { pool: "p".into() }
    );
    // An interactive one takes the newest batch request's place.
    let i0 = waiter(&p, Interactive, "interactive0", &served);
    let shed = b1.await.unwrap().unwrap_err();
    assert_eq!(shed, ProxyError::QueueShed { pool: "p".into() });
    let answer = shed.to_response(&http::HeaderValue::from_static("rid"));
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    // A normal one too, then nobody is left to give way.
    let n0 = waiter(&p, Normal, "normal0", &served);
    assert_eq!(
        b0.await.unwrap().unwrap_err(),
        ProxyError::QueueShed { pool: "p".into() }
    );
    assert_eq!(
        take(&p, Interactive).await.unwrap_err(),
        ProxyError::QueueFull { pool: "p".into() }
    );
    assert_eq!(p.waiters.waiting.load(Relaxed), 2, "never more than max");
    drop(held);
    i0.await.unwrap().unwrap();
    n0.await.unwrap().unwrap();
    assert_eq!(*served.lock().unwrap(), ["interactive0", "normal0"]);
    // [full, timeout, shed] by class.
    assert_eq!(rejections(&p, Batch), [1, 0, 2]);
    assert_eq!(rejections(&p, Interactive), [1, 0, 0]);
    assert_eq!(rejections(&p, Normal), [0, 0, 0]);
    assert_eq!(
        p.waiters.rejected.load(Relaxed),
        4,
        "all counted as dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_leaves_the_reserve_to_higher_classes() {
    let p = pool("{ max: 10, timeout: 30s, reserve: 1 }", 3);
    let b0 = take(&p, Batch).await.unwrap();
    let b1 = take(&p, Batch).await.unwrap();
    // One slot is free, and it is the reserve: a third batch request waits.
    let served = Arc::new(Mutex::new(Vec::new()));
    let b2 = waiter(&p, Batch, "batch2", &served);
    settle().await;
    assert_eq!(p.waiters.by_class[Batch.index()].load(Relaxed), 1);
    // A higher class takes it at once, past the waiting batch request.
    let start = tokio::time::Instant::now();
    let i0 = take(&p, Interactive).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    // A batch slot frees: one free slot is still only the reserve.
    drop(b0);
    settle().await;
    assert!(served.lock().unwrap().is_empty());
    // Two free: the batch request goes.
    drop(i0);
    b2.await.unwrap().unwrap();
    assert_eq!(*served.lock().unwrap(), ["batch2"]);
    drop(b1);
}

#[tokio::test(start_paused = true)]
async fn without_a_reserve_batch_fills_every_slot() {
    let p = pool("{ max: 0 }", 2);
    let _b0 = take(&p, Batch).await.unwrap();
    let _b1 = take(&p, Batch).await.unwrap();
    assert_eq!(
        take(&p, Interactive).await.unwrap_err(),
        ProxyError::QueueFull { pool: "p".into() }
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_times_out_by_its_class() {
    let p = pool("{ max: 10, timeout: 2s }", 1);
    let _held = take(&p, Normal).await.unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        take(&p, Batch).await.unwrap_err(),
        ProxyError::QueueTimeout { pool: "p".into() }
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(rejections(&p, Batch), [0, 1, 0]);
    assert_eq!(p.waiters.waiting.load(Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn with_every_instance_down_a_batch_request_is_answered_at_once_despite_the_reserve() {
    let p = pool("{ max: 10, timeout: 30s, reserve: 1 }", 3);
    let _ = p.members[0]
        .inst
        .observe_probe(false, 1, 1, Clock::new().now_ms());
    assert!(!p.members[0].inst.is_healthy());
    let start = tokio::time::Instant::now();
    assert_eq!(
        take(&p, Batch).await.unwrap_err(),
        ProxyError::AllDown { pool: "p".into() }
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}
