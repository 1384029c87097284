//! Capacity queueing and the failure modes.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use fulcrum_mock::{FailureMode, Latency, MockConfig};

use crate::client::{get, raw_exchange, send};
use crate::{named, start};

const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nhost: mock\r\n\r\n";

#[tokio::test]
async fn capacity_queues_requests_instead_of_rejecting() {
    let mock = start(MockConfig {
        capacity: Some(2),
        latency: Latency::Fixed(Duration::from_millis(100)),
        ..named("cap")
    })
    .await;
    let addr = mock.addr();
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| tokio::spawn(async move { get(addr, "/work").await.status }))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "3 waves expected, took {elapsed:?}"
    );
    let stats = mock.stats();
    assert_eq!(
        (stats.requests, stats.max_in_flight, stats.in_flight),
        (6, 2, 0)
    );
}

#[tokio::test]
async fn error500_mode_fails_requests_but_not_health() {
    let mock = start(named("e5")).await;
    mock.set_mode(FailureMode::Error500);
    let reply = get(mock.addr(), "/v1/x").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-mock-instance"), "e5");
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "injected", "instance": "e5"})
    );
    assert_eq!(get(mock.addr(), "/health").await.status, 200);
    mock.set_mode(FailureMode::Normal);
    assert_eq!(get(mock.addr(), "/v1/x").await.status, 200);
    assert_eq!((mock.stats().errors, mock.stats().requests), (1, 2));
}

#[tokio::test]
async fn error_rate_injects_errors() {
    let mock = start(MockConfig {
        error_rate: 1.0,
        ..named("er")
    })
    .await;
    for _ in 0..3 {
        assert_eq!(get(mock.addr(), "/fast").await.status, 500);
    }
    mock.set_error_rate(0.5);
    let mut failed = 0;
    for _ in 0..100 {
        if get(mock.addr(), "/fast").await.status == 500 {
            failed += 1;
        }
    }
    assert!(
        (25..=75).contains(&failed),
        "{failed} of 100 failed at rate 0.5"
    );
    mock.set_error_rate(0.0);
    assert_eq!(get(mock.addr(), "/fast").await.status, 200);
    assert_eq!(mock.stats().errors, 3 + failed);
}

#[tokio::test]
async fn reset_mode_drops_the_connection_unanswered() {
    let mock = start(MockConfig {
        mode: FailureMode::Reset,
        ..named("rst")
    })
    .await;
    for request in [GET_ROOT, b"GET /health HTTP/1.1\r\nhost: mock\r\n\r\n"] {
        let err = raw_exchange(mock.addr(), request).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    }
    assert!(send(mock.addr(), "GET", "/", &[], b"").await.is_err());
    let stats = mock.stats();
    assert_eq!(
        (stats.requests, stats.health_checks, stats.in_flight),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn garbage_mode_answers_non_http_bytes() {
    let mock = start(named("g")).await;
    mock.set_mode(FailureMode::Garbage);
    let bytes = raw_exchange(mock.addr(), GET_ROOT).await.unwrap();
    assert_eq!(bytes, b"SSH-2.0-garbage\r\n");
    // Also when the request has a body the server never reads.
    let post = b"POST /v1/x HTTP/1.1\r\nhost: mock\r\ncontent-length: 300000\r\n\r\n";
    let post = [&post[..], &[b'x'; 300_000][..]].concat();
    let bytes = raw_exchange(mock.addr(), &post).await.unwrap();
    assert_eq!(bytes, b"SSH-2.0-garbage\r\n");
    let err = send(mock.addr(), "GET", "/health", &[], b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("parse"), "{err}");
    mock.set_mode(FailureMode::Normal);
    assert_eq!(get(mock.addr(), "/fast").await.status, 200);
}

#[tokio::test]
async fn hang_mode_never_answers() {
    let mock = start(MockConfig {
        mode: FailureMode::Hang,
        ..named("hang")
    })
    .await;
    let addr = mock.addr();
    for path in ["/v1/x", "/health"] {
        let pending = tokio::time::timeout(Duration::from_millis(200), get(addr, path)).await;
        assert!(pending.is_err(), "{path} answered in hang mode");
    }
    let stats = mock.stats();
    assert_eq!((stats.requests, stats.health_checks), (1, 1));
    // The abandoned requests' connections are closed by the client, which cancels them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(mock.stats().in_flight, 0);
    assert_eq!(mock.stats().max_in_flight, 1);
}
