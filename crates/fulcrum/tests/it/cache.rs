//! The response cache through the whole gateway: single-flight of
//! identical misses, hits, keys on the body, bypass, stats.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use http::Method;
use std::time::Duration;

fn tts_gateway(url: &str) -> String {
    format!(
        "pools: {{ tts: {{ cache: {{ ttl: 1h, max_size: 1MiB, methods: [POST] }}, instances: [ {{ endpoint: \"{url}\" }} ] }} }}\nroutes: [ {{ path_prefix: /tts, pool: tts }} ]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_identical_tts_posts_make_one_upstream_call() {
    let m = mock_with(MockConfig {
        name: "tts".into(),
        latency: Latency::Fixed(Duration::from_millis(300)),
        ..MockConfig::default()
    })
    .await;
    let gw = gateway(&tts_gateway(&m.url())).await;
    let url = format!("http://{}/tts/speak?voice=anna", gw.proxy_addr);
    let c = client();

    // 20 at once: one goes upstream, 19 wait for its answer.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { post(&c, &url, br#"{"text":"hello"}"#).await })
        })
        .collect();
    let mut hits = 0;
    let mut bodies = std::collections::HashSet::new();
    for call in calls {
        let r = call.await.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        match r.headers["x-cache"].to_str().unwrap() {
            "HIT" => hits += 1,
            "MISS" => {}
            other => panic!("X-Cache: {other}"),
        }
        bodies.insert(r.body.clone());
    }
    assert_eq!(m.stats().requests, 1, "exactly one upstream call");
    assert_eq!(hits, 19);
    assert_eq!(bodies.len(), 1, "everyone got the same answer");

    // Repeats are hits, with an Age.
    let r = post(&c, &url, br#"{"text":"hello"}"#).await;
    assert_eq!(r.headers["x-cache"], "HIT");
    assert!(r.headers.contains_key("age"));
    assert!(r.headers.contains_key("x-request-id"));
    // A different body, query or path misses.
    for (u, body) in [
        (url.clone(), &br#"{"text":"world"}"#[..]),
        (url.replace("anna", "bob"), br#"{"text":"hello"}"#),
        (url.replace("speak", "say"), br#"{"text":"hello"}"#),
    ] {
        let r = post(&c, &u, body).await;
        assert_eq!(r.headers["x-cache"], "MISS", "{u}");
    }
    assert_eq!(m.stats().requests, 4);
    // Methods not listed are not cached; a request's no-store bypasses.
    let r = get(&c, &url).await;
    assert!(!r.headers.contains_key("x-cache"));
    let r = send(
        &c,
        Method::POST,
        &url,
        br#"{"text":"hello"}"#,
        &[("cache-control", "no-store")],
    )
    .await;
    assert!(!r.headers.contains_key("x-cache"));
    assert_eq!(m.stats().requests, 6);

    // The counters are in the pool's stats.
    let pools = gw.gateway.stats();
    let s = pools[0].cache.clone().expect("cache stats");
    assert_eq!((s.hits, s.misses, s.stores), (20, 4, 4));
    assert!(
        s.entries == 4 && s.bytes > 0 && s.max_bytes == 1 << 20,
        "{s:?}"
    );
    let admin = get(&c, &format!("http://{}/api/v1/pools", gw.admin_addr)).await;
    assert_eq!(admin.json()["pools"][0]["cache"]["hits"], 20);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_not_cached_and_waiters_go_upstream() {
    let m = mock_with(MockConfig {
        name: "tts".into(),
        latency: Latency::Fixed(Duration::from_millis(200)),
        mode: fulcrum_mock::FailureMode::Error500,
        ..MockConfig::default()
    })
    .await;
    let gw = gateway(&tts_gateway(&m.url()).replace(
        "cache:",
        "retry: { tries: 1 }, passive: { max_fails: 1000 }, cache:",
    ))
    .await;
    let url = format!("http://{}/tts", gw.proxy_addr);
    let c = client();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { post(&c, &url, b"x").await })
        })
        .collect();
    for call in calls {
        let r = call.await.unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.headers["x-cache"], "MISS");
    }
    assert_eq!(m.stats().requests, 5, "each caller got its own answer");
    assert_eq!(gw.gateway.stats()[0].cache.clone().unwrap().stores, 0);
    gw.shutdown().await;
}
