use crate::common::*;
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};

async fn setup(route: &str) -> (fulcrum_mock::MockServer, fulcrum::app::Running) {
    setup_at("/base", route).await
}

async fn setup_at(base: &str, route: &str) -> (fulcrum_mock::MockServer, fulcrum::app::Running) {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{}{base}\" }} ] }} }}\nroutes: [ {route} ]\n",
        a.url()
    ))
    .await;
    (a, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_request_id_and_hop_by_hop_handling() {
    let (_a, gw) = setup("{ path_prefix: /, pool: p }").await;
    let r = send(
        &client(),
        Method::GET,
        &format!("http://{}/x?q=1", gw.proxy_addr),
        b"",
        &[
            ("x-forwarded-for", "10.9.8.7"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "kept"),
            ("host", "gw.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    let h = &j["headers"];
    assert_eq!(h["x-forwarded-for"], "10.9.8.7, 127.0.0.1");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "gw.example");
    assert_eq!(h["x-custom"], "kept");
    assert!(h.get("keep-alive").is_none());
    let rid = h["x-request-id"].as_str().unwrap();
    assert_eq!(rid.len(), 32);
    assert_eq!(
        r.headers["x-request-id"], rid,
        "the same id goes back to the caller"
    );
    assert_eq!(j["path"], "/base/x");
    assert_eq!(j["query"], "q=1");

    let r = send(
        &client(),
        Method::GET,
        &format!("http://{}/", gw.proxy_addr),
        b"",
        &[("x-request-id", "trace-42")],
    )
    .await;
    assert_eq!(r.json()["headers"]["x-request-id"], "trace-42");
    assert_eq!(r.headers["x-request-id"], "trace-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_joins_the_rest_to_the_endpoint_path() {
    let (_a, gw) = setup("{ path_prefix: /asr/, pool: p, strip_prefix: true }").await;
    let r = get(
        &client(),
        &format!("http://{}/asr/recognize?lang=zh", gw.proxy_addr),
    )
    .await;
    assert_eq!(r.json()["path"], "/base/recognize");
    let r = get(&client(), &format!("http://{}/asr/", gw.proxy_addr)).await;
    assert_eq!(r.json()["path"], "/base");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_stream_through_as_they_are_sent() {
    let (_a, gw) = setup_at("", "{ path_prefix: /, pool: p }").await;
    let req = http::Request::get(format!(
        "http://{}/sse?events=10&interval_ms=200",
        gw.proxy_addr
    ))
    .body(http_body_util::Full::new(Bytes::new()))
    .unwrap();
    let t = Instant::now();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "first event took {:?}",
        t.elapsed()
    );
    assert!(String::from_utf8_lossy(&first).contains("\"i\":0"));
    let rest = body.collect().await.unwrap().to_bytes();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(
        all.matches("data:").count(),
        11,
        "10 events and [DONE]: {all}"
    );
    assert!(all.contains("[DONE]"));
    assert!(t.elapsed() >= Duration::from_millis(1800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways_intact() {
    let (a, gw) = setup_at("", "{ path_prefix: /, pool: p }").await;
    // 3 MiB: above the 1 MiB replay buffer, so it streams without buffering.
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let r = post(&client(), &format!("http://{}/echo", gw.proxy_addr), &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body[..] == body[..], "echoed body differs");
    assert_eq!(a.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_are_reused_to_instances() {
    let (a, gw) = setup("{ path_prefix: /, pool: p }").await;
    let c = client();
    for _ in 0..50 {
        assert_eq!(
            get(&c, &format!("http://{}/fast", gw.proxy_addr))
                .await
                .status,
            200
        );
    }
    assert_eq!(a.stats().requests, 50);
    // In-flight accounting returns to zero once bodies complete, and the
    // sequential requests all went over one kept-alive connection.
    let s = stats(&gw, "p", &format!("{}/base", a.url())).stats;
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.idle_connections, 1, "{s:?}");
    // Health probes open their own connections; the mock counts them too.
    let m = a.stats();
    assert_eq!(
        m.connections - m.health_checks,
        1,
        "one upstream connection for 50 sequential requests: {m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_reuse_a_bounded_set_of_upstream_connections() {
    let (a, gw) = setup_at("", "{ path_prefix: /, pool: p }").await;
    let url = format!("http://{}/fast", gw.proxy_addr);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = client();
                for _ in 0..50 {
                    assert_eq!(get(&c, &url).await.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let m = a.stats();
    assert_eq!(m.requests, 400);
    // At most one connection per concurrent caller (plus slack for a
    // connection the instance was closing), never one per request.
    assert!(
        m.connections <= 10,
        "{} upstream connections for 400 requests",
        m.connections
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_callers_are_served() {
    let (_a, gw) = setup("{ path_prefix: /, pool: p }").await;
    let c: TestClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let r = get(&c, &format!("http://{}/x", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/base/x");
    let host = format!("{}", gw.proxy_addr);
    assert_eq!(
        r.json()["headers"]["x-forwarded-host"],
        host.as_str(),
        "from :authority"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_http2_prior_knowledge_goes_through() {
    let (_a, gw) = setup("{ path_prefix: /, pool: p }").await;
    let url = format!("http://{}/h2?x=1", gw.proxy_addr);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                "\n%{http_version}",
                &url,
            ])
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, version) = text.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "answered over HTTP/2: {text}");
    let j: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(j["path"], "/base/h2");
    assert_eq!(j["query"], "x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_cannot_escape_a_route_prefix() {
    let (_a, gw) = setup("{ path_prefix: /asr/, pool: p, strip_prefix: true }").await;
    let c = client();
    let url = |p: &str| format!("http://{}{p}", gw.proxy_addr);
    // Climbing above the root: refused, nothing forwarded.
    for p in [
        "/asr/../../admin/secret",
        "/asr/%2e%2e/%2E%2E/admin",
        "/asr/.%2e/../x",
    ] {
        let r = get(&c, &url(p)).await;
        assert_eq!(r.status, 400, "{p}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("climbs above"),
            "{p}"
        );
    }
    // Resolved before matching: `/asr/../x` is `/x`, which no route serves.
    assert_eq!(get(&c, &url("/asr/%2e%2e/x")).await.status, 404);
    // Inside the prefix, the instance sees the resolved path.
    let r = get(&c, &url("/asr/v1/./models/%2E%2E/infer?q=1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/base/v1/infer");
    assert_eq!(r.json()["query"], "q=1");
}
