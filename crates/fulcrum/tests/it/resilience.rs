//! Failure handling at the edges: callers that misbehave, instances that
//! answer with retryable statuses, queues shared between pools, budgets.

use crate::common::*;
use fulcrum_mock::{FailureMode, Latency, MockConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pool(urls: &[String], extra: &str) -> String {
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    format!(
        "pools:\n  p:\n{extra}    instances: [ {} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        inst.join(", ")
    )
}

/// Sends a POST head announcing `declared` bytes, writes `sent` bytes, then
/// either closes (`close`) or stalls; returns whatever the gateway answered.
async fn partial_upload(
    addr: std::net::SocketAddr,
    declared: usize,
    sent: usize,
    close: bool,
) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; sent]).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_are_the_callers_fault_not_the_instances() {
    let a = mock("a").await;
    // tries: 1 streams the body straight to the instance.
    for extra in ["    retry: { tries: 1 }\n", ""] {
        let gw = gateway(&pool(&[a.url()], extra)).await;
        for _ in 0..3 {
            partial_upload(gw.proxy_addr, 1_000_000, 100_000, true).await;
        }
        let st = stats(&gw, "p", &a.url()).stats;
        assert_eq!((st.failures, st.ejections), (0, 0), "{extra}: {st:?}");
        assert_eq!(
            get(&client(), &format!("http://{}/", gw.proxy_addr))
                .await
                .status,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_gets_408_after_the_idle_timeout() {
    let a = mock("a").await;
    for extra in [
        "    timeouts: { idle: 300ms }\n    retry: { tries: 1 }\n",
        "    timeouts: { idle: 300ms }\n",
    ] {
        let gw = gateway(&pool(&[a.url()], extra)).await;
        let t = Instant::now();
        let answer = partial_upload(gw.proxy_addr, 100, 10, false).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{extra}: {answer}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let st = stats(&gw, "p", &a.url()).stats;
        assert_eq!(st.failures, 0, "{st:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_status_with_nowhere_to_retry_passes_the_instances_answer() {
    let a = mock("a").await;
    a.set_mode(FailureMode::Error500);
    let gw = gateway(&pool(
        &[a.url()],
        "    retry: { tries: 3, on: [error, http_500] }\n",
    ))
    .await;
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["error"],
        "injected",
        "the instance's own answer, not a gateway 502"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_sends_even_a_streamed_body_elsewhere() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.kill().await;
    let gw = gateway(&pool(&[a.url(), b.url()], "    algorithm: round_robin\n")).await;
    // 2 MiB: above the 1 MiB replay buffer, so the body streams; a POST.
    let body = vec![b'z'; 2 << 20];
    for _ in 0..6 {
        let r = post(&client(), &format!("http://{}/", gw.proxy_addr), &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["body_bytes"], 2 << 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_replayed_after_a_reset_when_the_pool_allows_it() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Reset);
    let gw = gateway(&pool(
        &[a.url(), b.url()],
        "    retry: { tries: 2, non_idempotent: true }\n",
    ))
    .await;
    for _ in 0..4 {
        let r = post(&client(), &format!("http://{}/", gw.proxy_addr), b"{}").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.instance(), "b");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_bounds_the_whole_request() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Hang);
    b.set_mode(FailureMode::Hang);
    let gw = gateway(&pool(
        &[a.url(), b.url()],
        "    timeouts: { response_header: 5s }\n    retry: { tries: 2, timeout: 400ms }\n",
    ))
    .await;
    let t = Instant::now();
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_freed_in_one_pool_wakes_a_request_queued_in_another() {
    let a = mock_with(MockConfig {
        name: "a".into(),
        latency: Latency::Fixed(Duration::from_millis(300)),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "pools:\n  pa: {{ queue: {{ timeout: 5s }}, instances: [ {{ endpoint: \"{u}\", max_concurrent: 1 }} ] }}\n  pb: {{ queue: {{ timeout: 5s }}, instances: [ {{ endpoint: \"{u}\", max_concurrent: 1 }} ] }}\nroutes: [ {{ path_prefix: /a, pool: pa }}, {{ path_prefix: /b, pool: pb }} ]\n",
        u = a.url()
    ))
    .await;
    let first = tokio::spawn({
        let url = format!("http://{}/a", gw.proxy_addr);
        async move { get(&client(), &url).await.status }
    });
    eventually(Duration::from_secs(2), "first request in flight", || {
        a.stats().in_flight == 1
    })
    .await;
    let t = Instant::now();
    let r = get(&client(), &format!("http://{}/b", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "queued request woke late: {:?}",
        t.elapsed()
    );
    assert_eq!(first.await.unwrap(), 200);
}
