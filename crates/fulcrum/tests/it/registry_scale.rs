//! What one registration costs when the registry is large (issue #11,
//! finding 6): 2,000 registrations of 64 task types each, one after the
//! other, while a caller keeps using a static route. Ignored (minutes, and
//! only meaningful optimised); run it as
//!
//! ```text
//! cargo test --release -p fulcrum --test it registry_scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `FULCRUM_SCALE_N` changes the number of registrations. The registered
//! endpoints are closed loopback ports (their probes are refused at once).

use crate::common::*;
use http::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TASKS: usize = 64;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p99 and max of `v`, in ms.
fn summary(v: &mut [Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort();
    let at = |q: f64| ms(v[((v.len() - 1) as f64 * q) as usize]);
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
        at(0.5),
        at(0.99),
        ms(v[v.len() - 1]),
        v.len()
    )
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn scale(distinct: bool) {
    let n: usize = std::env::var("FULCRUM_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let fixed = mock("static").await;
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", max_task_types: {TASKS}, max_instances: {} }}\npools:\n  s:\n    instances: [ {{ endpoint: \"{}\" }} ]\nroutes: [ {{ path_prefix: /static/, pool: s }} ]\n",
        scratch_dir(),
        n + 100,
        fixed.url()
    ))
    .await;
    let c = client();

    // A caller on the static route, one request at a time, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(Mutex::new(0usize));
    let seen: Arc<Mutex<Vec<Vec<Duration>>>> = Arc::new(Mutex::new(vec![vec![]; 3]));
    let caller = tokio::spawn({
        let (stop, phase, seen) = (stop.clone(), phase.clone(), seen.clone());
        let url = format!("http://{}/static/x", gw.proxy_addr);
        async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = get(&c, &url).await;
                let took = t.elapsed();
                assert_eq!(r.status, 200);
                let p = *phase.lock().unwrap();
                seen.lock().unwrap()[p].push(took);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    *phase.lock().unwrap() = 1;

    let url = format!("http://{}/api/v1/ai_analysis/register", gw.admin_addr);
    let register = |i: usize| {
        let tasks: Vec<String> = (0..TASKS)
            .map(|t| {
                if distinct {
                    format!("r{i}-t{t}")
                } else {
                    format!("t{t}")
                }
            })
            .collect();
        // Closed loopback ports, clear of the ephemeral range the
        // gateway's own listeners come from.
        let b = json!({"service_id": format!("s{i}"), "task_types": tasks,
            "endpoint": format!("http://127.0.0.1:{}/infer", 10_000 + i)});
        let (c, url) = (c.clone(), url.clone());
        async move {
            let t = Instant::now();
            let r = send(&c, Method::POST, &url, b.to_string().as_bytes(), &[]).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            t.elapsed()
        }
    };
    let started = Instant::now();
    let mut window = vec![];
    for i in 0..n {
        window.push(register(i).await);
        if (i + 1) % 250 == 0 || i + 1 == n {
            println!(
                "{:>5} registered ({:>6.1} s): last {} registrations {}; RSS {:.0} MB",
                i + 1,
                started.elapsed().as_secs_f64(),
                window.len(),
                summary(&mut window),
                rss_mb()
            );
            window.clear();
        }
    }
    // How long until everything registered so far is routed.
    let t = Instant::now();
    let routed = |count: usize| {
        let snap = gw.gateway.snapshot();
        let pool = if distinct {
            format!("r{}-t0", count - 1)
        } else {
            "t0".to_string()
        };
        snap.pool(&pool)
            .is_some_and(|p| distinct || p.members.len() == count)
    };
    while !routed(n) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "after the burst, everything was routed {:.0} ms after the last registration returned",
        ms(t.elapsed())
    );
    // One more registration at a time on the full registry.
    let mut last = vec![];
    let mut until_routed = vec![];
    for i in n..n + 20 {
        last.push(register(i).await);
        let t = Instant::now();
        while !routed(i + 1) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        until_routed.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    *phase.lock().unwrap() = 2;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    caller.await.unwrap();
    let pools = get(&c, &format!("http://{}/api/v1/pools", gw.admin_addr)).await;
    let routed = post(&c, &format!("http://{}/infer/t0", gw.proxy_addr), b"{}").await;
    let mut seen = seen.lock().unwrap();
    println!(
        "shape: {}; registrations: {n} of {TASKS} task types",
        if distinct {
            "distinct task types"
        } else {
            "shared task types"
        }
    );
    println!(
        "one registration on the full registry: {}",
        summary(&mut last)
    );
    println!(
        "  ... and from its 200 until routed: {}",
        summary(&mut until_routed)
    );
    println!("static route before: {}", summary(&mut seen[0]));
    println!("static route during: {}", summary(&mut seen[1]));
    println!("static route after:  {}", summary(&mut seen[2]));
    println!(
        "RSS {:.0} MB; /api/v1/pools {} bytes; /infer/t0 -> {}",
        rss_mb(),
        pools.body.len(),
        routed.status
    );
    if !cfg!(debug_assertions) {
        let p50 = last[last.len() / 2];
        assert!(p50 < Duration::from_millis(10), "{p50:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes; run optimised with --ignored --nocapture"]
async fn registry_scale_shared_task_types() {
    scale(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes; run optimised with --ignored --nocapture"]
async fn registry_scale_distinct_task_types() {
    scale(true).await;
}
