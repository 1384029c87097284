//! Normal-mode routes: request description, `/fast`, health, SSE, echo, admin.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::client::{self, get, post_json, send, ChanBody};
use crate::{named, start};

#[tokio::test]
async fn default_route_describes_the_request() {
    let mock = start(named("alpha")).await;
    let headers = [("x-test", "hello"), ("content-type", "application/json")];
    let reply = send(
        mock.addr(),
        "POST",
        "/v1/chat?x=1",
        &headers,
        b"hello world",
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-mock-instance"), "alpha");
    assert_eq!(reply.header("content-type"), "application/json");
    let doc = reply.json();
    assert_eq!(doc["instance"], "alpha");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["path"], "/v1/chat");
    assert_eq!(doc["query"], "x=1");
    assert_eq!(doc["body_bytes"], 11);
    assert_eq!(doc["headers"]["x-test"], "hello");
    assert_eq!(doc["headers"]["host"], mock.addr().to_string());
    let stats = mock.stats();
    assert_eq!(
        (stats.requests, stats.in_flight, stats.max_in_flight),
        (1, 0, 1)
    );
    assert!(mock.url().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn fast_path_answers_ok_and_counts() {
    let mock = start(named("fast")).await;
    for _ in 0..3 {
        let reply = get(mock.addr(), "/fast").await;
        assert_eq!(reply.status, 200);
        assert_eq!(&reply.body[..], b"ok");
        assert_eq!(reply.header("content-type"), "text/plain");
        assert_eq!(reply.header("x-mock-instance"), "fast");
    }
    assert_eq!(mock.stats().requests, 3);
}

#[tokio::test]
async fn health_follows_the_flag_and_is_not_a_request() {
    let mock = start(named("h")).await;
    let reply = get(mock.addr(), "/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ok", "instance": "h"})
    );
    mock.set_healthy(false);
    assert_eq!(get(mock.addr(), "/health").await.status, 503);
    assert_eq!(
        post_json(mock.addr(), "/__mock/control", r#"{"healthy":true}"#)
            .await
            .status,
        200
    );
    assert_eq!(get(mock.addr(), "/health").await.status, 200);
    let stats = mock.stats();
    assert_eq!((stats.health_checks, stats.requests), (3, 0));
}

#[tokio::test]
async fn sse_streams_events_then_done() {
    let mock = start(named("s")).await;
    let started = Instant::now();
    let resp = client::open(
        mock.addr(),
        "GET",
        "/sse?events=3&interval_ms=200",
        &[],
        Empty::<Bytes>::new(),
    )
    .await
    .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    let mut first_at = None;
    while let Some(frame) = timeout(Duration::from_secs(2), body.frame()).await.unwrap() {
        if let Ok(data) = frame.unwrap().into_data() {
            first_at.get_or_insert_with(|| started.elapsed());
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    let first_at = first_at.expect("no event");
    assert!(
        first_at < Duration::from_millis(150),
        "first event after {first_at:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "events not spaced"
    );
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(
        events,
        [
            r#"data: {"i":0,"instance":"s"}"#,
            r#"data: {"i":1,"instance":"s"}"#,
            r#"data: {"i":2,"instance":"s"}"#,
            "data: [DONE]",
        ]
    );
    assert_eq!(mock.stats().requests, 1);
}

#[tokio::test]
async fn echo_streams_the_body_back_chunk_by_chunk() {
    let mock = start(named("e")).await;
    let (tx, rx) = mpsc::channel(4);
    let headers = [("content-type", "application/x-ndjson")];
    tx.send(Bytes::from_static(b"hello ")).await.unwrap();
    let resp = client::open(mock.addr(), "POST", "/echo/stream", &headers, ChanBody(rx))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    assert_eq!(resp.headers()["x-mock-instance"], "e");
    let mut body = resp.into_body();
    // The first chunk comes back while the request body is still open.
    assert_eq!(next_data(&mut body).await.unwrap(), "hello ");
    tx.send(Bytes::from_static(b"world")).await.unwrap();
    assert_eq!(next_data(&mut body).await.unwrap(), "world");
    drop(tx);
    assert_eq!(next_data(&mut body).await, None);
}

async fn next_data(body: &mut Incoming) -> Option<Bytes> {
    let frame = timeout(Duration::from_secs(2), body.frame())
        .await
        .expect("echo stalled");
    frame.map(|f| f.unwrap().into_data().unwrap())
}

#[tokio::test]
async fn admin_routes_report_control_and_reset() {
    let mock = start(named("adm")).await;
    get(mock.addr(), "/x").await;
    let stats = get(mock.addr(), "/__mock/stats").await.json();
    assert_eq!(
        (stats["name"].as_str(), stats["requests"].as_u64()),
        (Some("adm"), Some(1))
    );
    let ctl = r#"{"mode":"500","latency":"120ms","error_rate":0.0}"#;
    assert_eq!(
        post_json(mock.addr(), "/__mock/control", ctl).await.status,
        200
    );
    let started = Instant::now();
    assert_eq!(get(mock.addr(), "/x").await.status, 500);
    assert!(started.elapsed() >= Duration::from_millis(120));
    let bad = post_json(mock.addr(), "/__mock/control", r#"{"mode":"sideways"}"#).await;
    assert_eq!(bad.status, 400);
    let ctl = r#"{"mode":"normal","latency":"0ms"}"#;
    assert_eq!(
        post_json(mock.addr(), "/__mock/control", ctl).await.status,
        200
    );
    assert_eq!(get(mock.addr(), "/x").await.status, 200);
    assert_eq!(mock.stats().errors, 1);
    assert_eq!(
        post_json(mock.addr(), "/__mock/reset", "").await.status,
        200
    );
    assert_eq!(mock.stats(), fulcrum_mock::MockStats::default());
}
