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

fn pool_yaml(url: &str, cache: &str, routes: &str) -> String {
    format!("pools: {{ p: {{ cache: {{ {cache} }}, instances: [ {{ endpoint: \"{url}\" }} ] }} }}\nroutes: {routes}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_callers_with_credentials_are_not_shared() {
    let m = mock("m").await;
    let gw = gateway(&pool_yaml(
        &m.url(),
        "ttl: 1h",
        "[ { path_prefix: /, pool: p } ]",
    ))
    .await;
    let c = client();
    let url = format!("http://{}/v1/me", gw.proxy_addr);
    let _ = send(
        &c,
        Method::GET,
        &url,
        b"",
        &[("authorization", "Bearer alice-secret")],
    )
    .await;
    let r = send(
        &c,
        Method::GET,
        &url,
        b"",
        &[("authorization", "Bearer bob")],
    )
    .await;
    assert_eq!(r.headers["x-cache"], "MISS");
    assert_eq!(r.json()["headers"]["authorization"], "Bearer bob");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_includes_the_host_and_the_route() {
    let m = mock("m").await;
    let gw = gateway(&pool_yaml(
        &m.url(),
        "ttl: 1h",
        "[ { host: a.example, path_prefix: /v1, strip_prefix: true, pool: p }, { host: b.example, path_prefix: /v1, pool: p } ]",
    ))
    .await;
    let c = client();
    let url = format!("http://{}/v1/models", gw.proxy_addr);
    let a = send(&c, Method::GET, &url, b"", &[("host", "a.example")]).await;
    assert_eq!(a.json()["path"], "/models");
    let b = send(&c, Method::GET, &url, b"", &[("host", "b.example")]).await;
    assert_eq!(b.json()["path"], "/v1/models");
    assert_eq!(b.json()["headers"]["x-forwarded-host"], "b.example");
    let again = send(&c, Method::GET, &url, b"", &[("host", "a.example")]).await;
    assert_eq!(
        (
            again.headers["x-cache"].to_str().unwrap(),
            again.json()["path"].as_str()
        ),
        ("HIT", Some("/models"))
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_streams_through_a_caching_pool() {
    use hyper::body::Frame;
    struct Rx(tokio::sync::mpsc::Receiver<bytes::Bytes>);
    impl hyper::body::Body for Rx {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
        }
    }
    let m = mock("m").await;
    let gw = gateway(&pool_yaml(
        &m.url(),
        "methods: [POST]",
        "[ { path_prefix: /, pool: p } ]",
    ))
    .await;
    let tcp = tokio::net::TcpStream::connect(gw.proxy_addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (btx, brx) = tokio::sync::mpsc::channel(4);
    let req = http::Request::post("/echo")
        .header("host", "x")
        .body(Rx(brx))
        .unwrap();
    btx.send(bytes::Bytes::from_static(b"first audio frame"))
        .await
        .unwrap();
    // The first frame comes back while the upload is still open.
    let resp = tokio::time::timeout(Duration::from_secs(5), tx.send_request(req))
        .await
        .expect("response head before the body ended")
        .unwrap();
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first frame echoed before the body ended");
    assert!(matches!(first, Some(Ok(_))));
    drop(btx);
    gw.shutdown().await;
}
