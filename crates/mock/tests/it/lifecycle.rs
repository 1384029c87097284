//! kill/restart semantics and runtime latency changes.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use fulcrum_mock::{Latency, MockConfig};
use tokio::net::TcpStream;

use crate::client::{get, send};
use crate::{named, start};

#[tokio::test]
async fn kill_refuses_connections_and_restart_serves_the_same_port() {
    let mock = start(named("k")).await;
    let addr = mock.addr();
    assert_eq!(get(addr, "/fast").await.status, 200);
    mock.kill().await;
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    mock.kill().await; // idempotent
    assert_send(&mock.kill());
    assert_send(&mock.restart());
    mock.restart().await.unwrap();
    assert_eq!(mock.addr(), addr);
    let reply = get(addr, "/fast").await;
    assert_eq!((reply.status, reply.header("x-mock-instance")), (200, "k"));
    assert_eq!(mock.stats().requests, 2, "stats survive a restart");
}

#[tokio::test]
async fn kill_aborts_in_flight_requests() {
    let slow = Latency::Fixed(Duration::from_secs(5));
    let mock = start(MockConfig {
        latency: slow,
        ..named("slow")
    })
    .await;
    let addr = mock.addr();
    let pending = tokio::spawn(async move { send(addr, "GET", "/slow", &[], b"").await });
    while mock.stats().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    mock.kill().await;
    let outcome = tokio::time::timeout(Duration::from_secs(1), pending)
        .await
        .expect("in-flight request survived kill")
        .unwrap();
    assert!(outcome.is_err(), "killed server answered: {outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.stats().in_flight, 0);
}

#[tokio::test]
async fn restart_on_a_live_server_keeps_serving() {
    let mock = start(named("r")).await;
    mock.restart().await.unwrap();
    assert_eq!(get(mock.addr(), "/fast").await.status, 200);
}

#[tokio::test]
async fn set_latency_changes_the_delay() {
    let mock = start(named("lat")).await;
    let timed = |path: &'static str| {
        let addr = mock.addr();
        async move {
            let started = Instant::now();
            assert_eq!(get(addr, path).await.status, 200);
            started.elapsed()
        }
    };
    assert!(timed("/fast").await < Duration::from_millis(100));
    mock.set_latency(Latency::Fixed(Duration::from_millis(150)));
    assert!(timed("/fast").await >= Duration::from_millis(150));
    // Health and admin routes ignore latency.
    assert!(timed("/health").await < Duration::from_millis(100));
    assert!(timed("/__mock/stats").await < Duration::from_millis(100));
    let (min, max) = (Duration::from_millis(50), Duration::from_millis(80));
    mock.set_latency(Latency::Uniform { min, max });
    let took = timed("/x").await;
    assert!(took >= min && took < Duration::from_millis(150), "{took:?}");
    mock.set_latency(Latency::Fixed(Duration::ZERO));
    assert!(timed("/fast").await < Duration::from_millis(100));
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn mock_server_is_shareable_across_tasks() {
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<fulcrum_mock::MockServer>();
}
