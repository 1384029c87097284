use crate::common::*;
use fulcrum_mock::FailureMode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn pool_yaml(urls: &[String], extra: &str) -> String {
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    format!(
        "health_check: {{ interval: 100ms, timeout: 200ms, failure_threshold: 2, recovery_threshold: 2 }}\n\
         passive: {{ max_fails: 2, fail_timeout: 500ms }}\n\
         pools:\n  p:\n    algorithm: round_robin\n{extra}    instances: [ {} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        inst.join(", ")
    )
}

/// The issue's acceptance scenario: one of three instances is killed
/// (listener and connections gone, like `kill -9`) under 32 concurrent
/// POSTs; no client request fails; the instance is marked down and
/// skipped; after it comes back and passes the recovery probes it gets
/// traffic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_under_load_fails_no_request_and_it_is_taken_back() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let gw = gateway(&pool_yaml(
        &[a.url(), b.url(), c.url()],
        "    retry: { tries: 3, on: [error, timeout], non_idempotent: true }\n",
    ))
    .await;
    let url = format!("http://{}/infer", gw.proxy_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let r = post(&c, &url, br#"{"image_url":"x"}"#).await;
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed)
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed)
                    };
                }
            })
        })
        .collect();
    let b_ep = b.url();
    eventually(Duration::from_secs(5), "traffic on b", || {
        b.stats().requests > 50
    })
    .await;
    b.kill().await;
    eventually(Duration::from_secs(5), "b marked down by probes", || {
        !stats(&gw, "p", &b_ep).stats.healthy
    })
    .await;
    let before = ok.load(Ordering::Relaxed);
    eventually(Duration::from_secs(5), "traffic continues", || {
        ok.load(Ordering::Relaxed) > before + 300
    })
    .await;
    let b_seen = b.stats().requests;
    b.restart().await.expect("b restarts on its port");
    eventually(Duration::from_secs(5), "b healthy again", || {
        stats(&gw, "p", &b_ep).stats.healthy
    })
    .await;
    eventually(Duration::from_secs(5), "b gets traffic again", || {
        b.stats().requests > b_seen + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "client requests failed ({} ok)",
        ok.load(Ordering::Relaxed)
    );
    let s = stats(&gw, "p", &b_ep).stats;
    assert!(s.failures >= 1, "the kill was noticed: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_status_is_retried_elsewhere_and_ejects_the_instance() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Error500);
    // No probes after the first: a passes them (its /health is fine), and
    // a passing probe ends an ejection; here only the ejection is tested.
    let yaml = pool_yaml(
        &[a.url(), b.url()],
        "    retry: { tries: 2, on: [error, http_500] }\n",
    )
    .replace("interval: 100ms", "interval: 1h, jitter: 0");
    let gw = gateway(&yaml).await;
    let c = client();
    for _ in 0..20 {
        let r = get(&c, &format!("http://{}/", gw.proxy_addr)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.instance(), "b");
    }
    let s = stats(&gw, "p", &a.url()).stats;
    assert!(s.ejections >= 1, "{s:?}");
    assert!(
        a.stats().requests <= 4,
        "an ejected instance kept getting traffic: {:?}",
        a.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_status_is_passed_through_untouched() {
    let a = mock("a").await;
    a.set_mode(FailureMode::Error500);
    let gw = gateway(&pool_yaml(&[a.url()], "")).await;
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "injected", "the instance's own body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_not_replayed_after_a_reset_unless_the_pool_allows_it() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Reset);
    b.set_mode(FailureMode::Reset);
    // No probes after the first: in Reset mode /health fails too, and a
    // slow run would otherwise see both marked down (503, not 502).
    let yaml = pool_yaml(&[a.url(), b.url()], "    retry: { tries: 2 }\n")
        .replace("interval: 100ms", "interval: 1h, jitter: 0");
    let gw = gateway(&yaml).await;
    let r = post(&client(), &format!("http://{}/", gw.proxy_addr), b"x").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        a.stats().requests + b.stats().requests,
        1,
        "a POST must not be replayed after it reached an instance"
    );
    // An idempotent GET is retried on the other instance.
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 502);
    assert_eq!(a.stats().requests + b.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_retried_even_for_posts() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.kill().await;
    let gw = gateway(&pool_yaml(&[a.url(), b.url()], "")).await;
    let c = client();
    for _ in 0..10 {
        let r = post(&c, &format!("http://{}/", gw.proxy_addr), b"payload").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["body_bytes"], 7);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_instance_is_down_the_pool_answers_503_fast() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_healthy(false);
    b.set_healthy(false);
    let gw = gateway(&pool_yaml(&[a.url(), b.url()], "")).await;
    eventually(Duration::from_secs(5), "both down", || {
        gw.gateway.stats()[0]
            .instances
            .iter()
            .all(|i| !i.stats.healthy)
    })
    .await;
    let before = a.stats().requests + b.stats().requests;
    let t = std::time::Instant::now();
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 503);
    assert!(t.elapsed() < Duration::from_millis(500));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json()["pool"], "p");
    assert_eq!(
        a.stats().requests + b.stats().requests,
        before,
        "no instance was tried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_mode_tries_instances_that_look_down() {
    let a = mock("a").await;
    a.set_healthy(false);
    let gw = gateway(&pool_yaml(&[a.url()], "    panic: true\n")).await;
    eventually(Duration::from_secs(5), "a down", || {
        !gw.gateway.stats()[0].instances[0].stats.healthy
    })
    .await;
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 200, "panic mode serves from a 'down' instance");
}

// --- passive ejection under churn (issue #11, finding 2) -----------------

/// The issue's retry settings.
const CHURN_RETRY: &str =
    "    retry: { tries: 3, on: [error, timeout, http_502, http_503], non_idempotent: true }\n";

/// A pool `p` of `urls` with `passive` and `health` (the global sections)
/// and the issue's retry settings; `passive.max_ejection_percent` is left
/// at its default.
fn churn_yaml(urls: &[String], passive: &str, health: &str) -> String {
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    format!(
        "health_check: {health}\npassive: {passive}\n\
         pools:\n  p:\n    algorithm: round_robin\n{CHURN_RETRY}    instances: [ {} ]\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n",
        inst.join(", ")
    )
}

/// Probes that never run again after the first one (no probe ends an
/// ejection or marks an instance down during the test).
const NO_PROBES: &str = "{ interval: 1h, jitter: 0 }";

fn ejected(gw: &fulcrum::app::Running, url: &str) -> bool {
    stats(gw, "p", url).stats.ejected
}

/// Which instances answer `n` GETs; every one must be a 200.
async fn answering(
    c: &TestClient,
    url: &str,
    n: usize,
) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for _ in 0..n {
        let r = get(c, url).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        *seen.entry(r.instance()).or_insert(0) += 1;
    }
    seen
}

/// The hostile scenario in small: 32 clients POST while each of three
/// instances in turn is killed and restarted 300 ms later. Probes are
/// slower than the outages (5 failed probes mark an instance down), so
/// they never see one down: before the fix every killed instance stayed
/// ejected for `fail_timeout` (30 s), the third kill emptied the pool and
/// every request got a 503. Now: no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_killed_and_restarted_in_turn_fail_no_request() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    // `response_header: 5s`: a try left without an answer is retried after
    // 5 s, not 60. (2 of 11 early runs, on a loaded machine, took 60 s
    // longer — the default response_header — without a failed request;
    // the cause was not found and ~100 runs since did not show it.)
    let yaml = churn_yaml(
        &[a.url(), b.url(), c.url()],
        "{ max_fails: 2, fail_timeout: 30s }",
        "{ interval: 500ms, fast_interval: 100ms, timeout: 200ms, failure_threshold: 5, recovery_threshold: 2 }",
    );
    let gw = gateway(&format!("timeouts: {{ response_header: 5s }}\n{yaml}")).await;
    let url = format!("http://{}/infer", gw.proxy_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
            let statuses = statuses.clone();
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let r = post(&c, &url, br#"{"image_url":"x"}"#).await;
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        *statuses
                            .lock()
                            .unwrap()
                            .entry(r.status.as_u16())
                            .or_insert(0) += 1;
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(5), "traffic on c", || {
        c.stats().requests > 50
    })
    .await;
    let (mut ejections, mut not_back) = (0, vec![]);
    for _round in 0..2 {
        for m in [&a, &b, &c] {
            let seen = m.stats().requests;
            m.kill().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            ejections += u64::from(ejected(&gw, &m.url()));
            m.restart().await.expect("restarts on its port");
            // Until it serves again (at most 3 s: then on to the next kill,
            // and the test fails below).
            let until = tokio::time::Instant::now() + Duration::from_secs(3);
            while m.stats().requests <= seen + 20 {
                if tokio::time::Instant::now() >= until {
                    not_back.push(m.url());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed: {:?}",
        ok + failed,
        statuses.lock().unwrap()
    );
    assert_eq!(
        not_back,
        Vec::<String>::new(),
        "served again within 3 s of a restart"
    );
    assert!(ejections >= 1, "the kills ejected instances");
    for m in [&a, &b, &c] {
        let s = stats(&gw, "p", &m.url()).stats;
        assert!(s.healthy, "never marked down by probes: {s:?}");
    }
}

/// An instance ejected while it restarted is let back by the first probe
/// it passes, not after `fail_timeout` (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_probe_ends_an_ejection_early() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&churn_yaml(
        &[a.url(), b.url()],
        "{ max_fails: 2, fail_timeout: 60s }",
        "{ interval: 200ms, timeout: 200ms, failure_threshold: 1000, recovery_threshold: 1 }",
    ))
    .await;
    let (c, url) = (client(), format!("http://{}/", gw.proxy_addr));
    a.kill().await;
    for _ in 0..10 {
        assert_eq!(get(&c, &url).await.status, 200, "retried on b");
    }
    assert!(ejected(&gw, &a.url()), "{:?}", stats(&gw, "p", &a.url()));
    a.restart().await.expect("a restarts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let r = get(&c, &url).await;
        assert_eq!(r.status, 200);
        if r.instance() == "a" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a still ejected 3 s after it came back: {:?}",
            stats(&gw, "p", &a.url())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!ejected(&gw, &a.url()));
}

/// Two of three instances die: passive ejection takes out one (50 % of 3,
/// rounded down); the other keeps its failures counted, and its requests
/// are retried. Once both are back, the one not ejected serves at once.
/// (No probes after the first, so only the cap keeps it in.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_ejection_takes_out_at_most_half_of_the_pool() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let gw = gateway(&churn_yaml(
        &[a.url(), b.url(), c.url()],
        "{ max_fails: 2, fail_timeout: 60s }",
        NO_PROBES,
    ))
    .await;
    let (cl, url) = (client(), format!("http://{}/", gw.proxy_addr));
    a.kill().await;
    b.kill().await;
    assert_eq!(answering(&cl, &url, 30).await.get("c"), Some(&30));
    let (ea, eb) = (ejected(&gw, &a.url()), ejected(&gw, &b.url()));
    assert!(ea != eb, "exactly one of a and b ejected: {ea} {eb}");
    let kept = if ea { &b } else { &a };
    assert!(stats(&gw, "p", &kept.url()).stats.failures >= 2);
    a.restart().await.unwrap();
    b.restart().await.unwrap();
    let seen = answering(&cl, &url, 30).await;
    let name = if ea { "b" } else { "a" };
    assert!(
        seen.get(name).copied().unwrap_or(0) >= 10,
        "{name}, never ejected, is back in rotation: {seen:?}"
    );
}

/// The only instance in service goes away (here: drained by the
/// operator) while the other is still ejected but answers again: the
/// request is tried on the ejected one instead of a gateway 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_instance_left_is_ejected_requests_are_tried_anyway() {
    let (a, b) = (mock("a").await, mock("b").await);
    let yaml = format!(
        "admin: {{ token: adm1n }}\n{}",
        churn_yaml(
            &[a.url(), b.url()],
            "{ max_fails: 1, fail_timeout: 60s }",
            NO_PROBES
        )
        .replace("http_503]", "http_503, http_500]")
    );
    let gw = gateway(&yaml).await;
    let (c, url) = (client(), format!("http://{}/", gw.proxy_addr));
    a.set_mode(FailureMode::Error500);
    let r = get(&c, &url).await;
    assert_eq!((r.status.as_u16(), r.instance()), (200, "b".to_string()));
    assert!(ejected(&gw, &a.url()));
    a.set_mode(FailureMode::Normal);
    let enc = b.url().replace(':', "%3A").replace('/', "%2F");
    let drain = format!("http://{}/api/v1/instances/{enc}/drain", gw.admin_addr);
    let auth = [("authorization", "Bearer adm1n")];
    let r = send(&c, http::Method::POST, &drain, b"", &auth).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for _ in 0..5 {
        let r = get(&c, &url).await;
        assert_eq!(
            r.status, 200,
            "tried on a rather than refused: {:?}",
            r.body
        );
        assert_eq!(r.instance(), "a");
    }
    assert!(ejected(&gw, &a.url()), "still ejected: tried anyway");
}
