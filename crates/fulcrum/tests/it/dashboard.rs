//! The dashboard on the admin listener: the page and its headers, the
//! event log (`/api/v1/events`) and the history (`/api/v1/history`) it
//! reads. The page itself is driven in a real browser by
//! `dashboard_browser.rs`.

use crate::common::*;
use fulcrum_mock::FailureMode;
use http::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_a_strict_content_security_policy() {
    let gw = gateway("").await;
    let c = client();
    let page = get(&c, &format!("http://{}/", gw.admin_addr)).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<script src=\"/ui/dashboard.js\""), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    for (file, ty) in [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
    ] {
        let r = get(&c, &format!("http://{}/ui/{file}", gw.admin_addr)).await;
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.headers["content-type"], ty);
        assert!(r.headers.contains_key("content-security-policy"));
    }
    let js = get(&c, &format!("http://{}/ui/dashboard.js", gw.admin_addr)).await;
    let js = String::from_utf8_lossy(&js.body);
    assert!(
        !js.contains("innerHTML") && !js.contains("insertAdjacentHTML"),
        "the script never parses fleet text as HTML"
    );
    let r = get(&c, &format!("http://{}/ui/../Cargo.toml", gw.admin_addr)).await;
    assert_eq!(r.status, 404);
    let r = get(&c, &format!("http://{}/ui/other.js", gw.admin_addr)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such dashboard file");
    gw.shutdown().await;
}

fn events(body: &Value) -> Vec<Value> {
    body["events"].as_array().expect("events").clone()
}

fn kinds(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Drains, weights, health flips, cool-downs, ejections and registrations
/// land in the event log with their instance and pool, in order, each
/// once; `after` gives only the newer ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_records_what_happened_to_the_fleet_in_order() {
    let (a, b, busy) = (mock("a").await, mock("b").await, mock("busy").await);
    let reg = mock("reg").await;
    busy.set_mode(FailureMode::Overloaded);
    let gw = gateway(&format!(
        "admin: {{ token: t0ken }}\n\
         health_check: {{ interval: 100ms, timeout: 200ms, failure_threshold: 1, recovery_threshold: 1 }}\n\
         passive: {{ max_fails: 2, fail_timeout: 30s }}\n\
         pools:\n  p:\n    algorithm: round_robin\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\n\
         \x20 busy:\n    instances: [ {{ endpoint: \"{}\" }} ]\n\
         routes: [ {{ path_prefix: /busy, pool: busy }}, {{ path_prefix: /, pool: p }} ]\n",
        a.url(),
        b.url(),
        busy.url()
    ))
    .await;
    let c = client();
    let admin = |p: &str| format!("http://{}{p}", gw.admin_addr);
    let auth = [("authorization", "Bearer t0ken")];
    let all = get(&c, &admin("/api/v1/events")).await.json();
    assert_eq!(events(&all), Vec::<Value>::new(), "nothing happened yet");
    let start = all["last_seq"].as_u64().unwrap();

    // An operator drains and weighs a; a wrong token changes nothing.
    let id = enc(&a.url());
    let r = send(
        &c,
        Method::POST,
        &admin(&format!("/api/v1/instances/{id}/drain")),
        b"",
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status, 401);
    let path = format!("/api/v1/instances/{id}/drain");
    assert_eq!(
        send(&c, Method::POST, &admin(&path), b"", &auth)
            .await
            .status,
        200
    );
    let path = format!("/api/v1/instances/{id}/weight");
    let r = send(&c, Method::PUT, &admin(&path), br#"{"weight": 7}"#, &auth).await;
    assert_eq!(r.status, 200);
    let path = format!("/api/v1/instances/{id}/enable");
    assert_eq!(
        send(&c, Method::POST, &admin(&path), b"", &auth)
            .await
            .status,
        200
    );

    // b's probes fail, then pass.
    b.set_healthy(false);
    eventually(Duration::from_secs(5), "b down", || {
        !stats(&gw, "p", &b.url()).stats.healthy
    })
    .await;
    b.set_healthy(true);
    eventually(Duration::from_secs(5), "b up", || {
        stats(&gw, "p", &b.url()).stats.healthy
    })
    .await;

    // busy answers 503 with Retry-After: it cools down.
    let r = get(&c, &format!("http://{}/busy", gw.proxy_addr)).await;
    assert_eq!(r.status, 503);

    // A service registers.
    let r = register(
        &c,
        &gw,
        json!({"service_id": "v1", "name": "vision", "task_types": ["vision"],
               "endpoint": format!("{}/infer", reg.url()), "version": "1"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let body = get(&c, &admin(&format!("/api/v1/events?after={start}")))
        .await
        .json();
    let evs = events(&body);
    let ks = kinds(&evs);
    let a_ep = a.url();
    let b_ep = b.url();
    let of = |kind: &str| -> Vec<&Value> { evs.iter().filter(|e| e["kind"] == kind).collect() };
    assert_eq!(of("drained").len(), 1, "{ks:?}");
    assert_eq!(of("drained")[0]["endpoint"], a_ep.as_str());
    assert_eq!(of("weight").len(), 1, "{ks:?}");
    assert!(of("weight")[0]["message"].as_str().unwrap().contains('7'));
    assert_eq!(of("enabled").len(), 1, "{ks:?}");
    let downs = of("health_down");
    assert_eq!(downs.len(), 1, "one flip, not one per probe: {ks:?}");
    assert_eq!(downs[0]["endpoint"], b_ep.as_str());
    assert_eq!(of("health_up").len(), 1, "{ks:?}");
    let cool = of("cool_down");
    assert_eq!(cool.len(), 1, "{ks:?}");
    assert_eq!(cool[0]["endpoint"], busy.url().as_str());
    assert_eq!(cool[0]["pool"], "busy");
    assert!(
        cool[0]["message"].as_str().unwrap().contains("Retry-After"),
        "{}",
        cool[0]
    );
    assert_eq!(of("registered").len(), 1, "{ks:?}");
    assert!(
        of("registered")[0]["endpoint"]
            .as_str()
            .unwrap()
            .contains(&reg.url()),
        "{ks:?}"
    );
    // In order, with increasing sequence numbers and times.
    let pos = |k: &str| ks.iter().position(|x| x == k).unwrap();
    assert!(pos("drained") < pos("weight") && pos("weight") < pos("enabled"));
    assert!(pos("enabled") < pos("health_down") && pos("health_down") < pos("health_up"));
    assert!(pos("health_up") < pos("cool_down") && pos("cool_down") < pos("registered"));
    for w in evs.windows(2) {
        assert_eq!(w[1]["seq"].as_u64(), w[0]["seq"].as_u64().map(|s| s + 1));
        assert!(w[1]["unix_ms"].as_u64() >= w[0]["unix_ms"].as_u64());
    }
    // `after` the last one: nothing; `limit` caps the answer.
    let last = body["last_seq"].as_u64().unwrap();
    let none = get(&c, &admin(&format!("/api/v1/events?after={last}")))
        .await
        .json();
    assert_eq!(events(&none).len(), 0);
    let two = get(&c, &admin(&format!("/api/v1/events?after={start}&limit=2")))
        .await
        .json();
    assert_eq!(kinds(&events(&two)), ks[..2].to_vec());
    let bad = get(&c, &admin("/api/v1/events?after=x")).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("after"),
        "{:?}",
        bad.body
    );
    let bad = get(&c, &admin("/api/v1/history?since=-1")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("since"));
    gw.shutdown().await;
}

/// Passive ejection after repeated errors is an event too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejection_is_an_event() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Error500);
    let gw = gateway(&format!(
        "health_check: {{ interval: 1h, jitter: 0 }}\n\
         passive: {{ max_fails: 2, fail_timeout: 30s }}\n\
         pools:\n  p:\n    algorithm: round_robin\n    retry: {{ tries: 2, on: [error, http_500] }}\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(
            get(&c, &format!("http://{}/", gw.proxy_addr)).await.status,
            200
        );
    }
    let body = get(&c, &format!("http://{}/api/v1/events", gw.admin_addr))
        .await
        .json();
    let evs = events(&body);
    let ejected: Vec<_> = evs.iter().filter(|e| e["kind"] == "ejected").collect();
    assert_eq!(ejected.len(), 1, "{evs:?}");
    assert_eq!(ejected[0]["endpoint"], a.url().as_str());
    assert_eq!(ejected[0]["pool"], "p");
    gw.shutdown().await;
}

/// The sampler keeps every pool's and instance's series; `since` gives
/// only newer samples; values are req/s over each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_has_a_series_per_pool_and_instance_and_since_gives_newer_samples() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "pools:\n  p:\n    algorithm: round_robin\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let c = client();
    let url = format!("http://{}/api/v1/history?pool=p", gw.admin_addr);
    // Traffic until two samples after the first show it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let h = loop {
        for _ in 0..10 {
            get(&c, &format!("http://{}/", gw.proxy_addr)).await;
        }
        let h = get(&c, &url).await.json();
        let rates: Vec<f64> = h["pools"][0]["rps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        if rates.iter().filter(|r| **r > 0.0).count() >= 2 {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no rate in {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(h["step_s"], 2);
    assert_eq!(h["points"], 450);
    let t: Vec<u64> = h["t"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let pool = &h["pools"][0];
    assert_eq!(pool["name"], "p");
    let insts = pool["instances"].as_array().unwrap();
    assert_eq!(insts.len(), 2);
    for s in [&pool["rps"], &pool["p99_ms"], &pool["queued"]] {
        assert_eq!(s.as_array().unwrap().len(), t.len());
    }
    for i in insts {
        for s in ["rps", "p99_ms", "in_flight"] {
            assert_eq!(i[s].as_array().unwrap().len(), t.len(), "{s}");
        }
    }
    // Round robin: both instances served, and their rates sum to the pool's.
    let last = t.len() - 1;
    let sum: f64 = insts.iter().filter_map(|i| i["rps"][last].as_f64()).sum();
    let pool_rate = pool["rps"][last].as_f64().unwrap();
    assert!((sum - pool_rate).abs() < 0.01, "{sum} vs {pool_rate}");
    let since = t[last - 1];
    let newer = get(&c, &format!("{url}&since={since}")).await.json();
    let newer_t: Vec<u64> = newer["t"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        !newer_t.is_empty() && newer_t.iter().all(|&x| x > since),
        "{newer_t:?}"
    );
    assert_eq!(
        newer["pools"][0]["rps"].as_array().unwrap().len(),
        newer_t.len()
    );
    let other = get(
        &c,
        &format!("http://{}/api/v1/history?pool=nope", gw.admin_addr),
    )
    .await;
    assert_eq!(other.json()["pools"], json!([]));
    gw.shutdown().await;
}
