//! The native admin API: drain, enable, re-weight (token-protected, kept
//! across restarts) and the live stats that show their effect.

use crate::common::*;
use http::Method;
use std::collections::HashMap;

fn pool(a: &str, b: &str) -> String {
    format!(
        "pools: {{ p: {{ algorithm: weighted_round_robin, instances: [ {{ endpoint: \"{a}\" }}, {{ endpoint: \"{b}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n"
    )
}

async fn shares(c: &TestClient, url: &str, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        *m.entry(get(c, url).await.instance()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_enable_and_weight_change_traffic_and_survive_a_restart() {
    let (a, b) = (mock("a").await, mock("b").await);
    let dir = scratch_dir();
    let yaml = format!(
        "admin: {{ token: adm1n }}\nregistry: {{ path: \"{dir}\" }}\n{}",
        pool(&a.url(), &b.url())
    );
    let full = |y: &str| {
        format!(
            "listen: 127.0.0.1:0\naccess_log: {{ path: off }}\n{}",
            y.replace(
                "admin: { token: adm1n }",
                "admin: { listen: 127.0.0.1:0, token: adm1n }"
            )
        )
    };
    let gw = fulcrum::app::start(fulcrum_config::parse(&full(&yaml), &|_| None).unwrap())
        .await
        .unwrap();
    let c = client();
    let admin = format!("http://{}/api/v1", gw.admin_addr);
    let url = format!("http://{}/", gw.proxy_addr);
    let auth = [("authorization", "Bearer adm1n")];

    let r = send(
        &c,
        Method::POST,
        &format!("{admin}/instances/{}/drain", enc(&a.url())),
        b"",
        &[],
    )
    .await;
    assert_eq!(r.status, 401, "the admin token is required");
    let r = send(
        &c,
        Method::POST,
        &format!("{admin}/instances/{}/drain", enc(&a.url())),
        b"",
        &auth,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        shares(&c, &url, 10).await.get("b"),
        Some(&10),
        "a drained: no new requests"
    );

    let r = send(
        &c,
        Method::POST,
        &format!("{admin}/instances/{}/enable", enc(&a.url())),
        b"",
        &auth,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &c,
        Method::PUT,
        &format!("{admin}/instances/{}/weight", enc(&a.url())),
        br#"{"weight":3}"#,
        &auth,
    )
    .await;
    assert_eq!(r.json()["weight"], 3);
    let s = shares(&c, &url, 40).await;
    assert_eq!((s["a"], s["b"]), (30, 10), "weight 3:1 applied: {s:?}");
    let bad = send(
        &c,
        Method::PUT,
        &format!("{admin}/instances/{}/weight", enc(&a.url())),
        br#"{"weight":0}"#,
        &auth,
    )
    .await;
    assert_eq!(bad.status, 400);
    let unknown = send(
        &c,
        Method::POST,
        &format!("{admin}/instances/nope/drain"),
        b"",
        &auth,
    )
    .await;
    assert_eq!(unknown.status, 404);

    // Live stats show the override, latencies and shares.
    let pools = get(&c, &format!("{admin}/pools")).await.json();
    let ia = pool_row(&pools, a.url().as_str());
    assert_eq!(ia["weight"], 1);
    assert_eq!(ia["effective_weight"], 3);
    assert!(
        (ia["expected_share"].as_f64().unwrap() - 0.75).abs() < 1e-9,
        "{ia}"
    );
    assert!(ia["latency_p99_ms"].as_f64().is_some(), "{ia}");
    let list = get(&c, &format!("{admin}/instances")).await.json();
    assert_eq!(list["total"], 2);

    // The override is stored: a restart keeps weight 3.
    gw.shutdown().await;
    let gw = fulcrum::app::start(fulcrum_config::parse(&full(&yaml), &|_| None).unwrap())
        .await
        .unwrap();
    let s = shares(&c, &format!("http://{}/", gw.proxy_addr), 40).await;
    assert_eq!(
        (s["a"], s["b"]),
        (30, 10),
        "override survived the restart: {s:?}"
    );
    let r = send(
        &c,
        Method::PUT,
        &format!(
            "http://{}/api/v1/instances/{}/weight",
            gw.admin_addr,
            enc(&a.url())
        ),
        br#"{"weight":null}"#,
        &auth,
    )
    .await;
    assert_eq!(r.status, 200);
    let s = shares(&c, &format!("http://{}/", gw.proxy_addr), 40).await;
    assert_eq!((s["a"], s["b"]), (20, 20), "cleared: {s:?}");
}

/// A pool whose every instance an operator drained says so, rather than
/// that its instances are down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_drained_whole_says_it_is_drained_not_down() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&pool(&a.url(), &b.url())).await;
    let c = client();
    let admin = format!("http://{}/api/v1", gw.admin_addr);
    for m in [&a, &b] {
        let path = format!("{admin}/instances/{}/drain", enc(&m.url()));
        assert_eq!(post(&c, &path, b"").await.status, 200);
    }
    let r = get(&c, &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 503);
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("drained"), "{msg}");
    assert!(!msg.contains("down"), "{msg}");
    // One back: served again.
    let path = format!("{admin}/instances/{}/enable", enc(&a.url()));
    assert_eq!(post(&c, &path, b"").await.status, 200);
    assert_eq!(
        get(&c, &format!("http://{}/", gw.proxy_addr)).await.status,
        200
    );
    gw.shutdown().await;
}
