//! Active probes against the project's mock instance on loopback.

use fulcrum_config::{parse_endpoint, Probe};
use fulcrum_control::health::{probe, HealthChecker};
use fulcrum_dataplane::instance::InstanceState;
use fulcrum_dataplane::Gateway;
use fulcrum_mock::{FailureMode, MockConfig, MockServer};
use std::time::Duration;

async fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), MockConfig::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn http_probe_follows_the_health_route_and_tcp_only_connects() {
    let m = mock().await;
    let inst = InstanceState::new(parse_endpoint(&m.url()).unwrap());
    let http = Probe::Http {
        path: "/health".into(),
    };
    assert_eq!(probe(&inst, &http).await, Ok(()));
    assert_eq!(
        inst.origin.conns.idle(),
        0,
        "a probe uses a connection of its own and leaves the pool to requests"
    );
    m.set_healthy(false);
    let err = probe(&inst, &http).await.unwrap_err();
    assert!(err.contains("503"), "{err}");
    assert_eq!(
        probe(&inst, &Probe::Tcp).await,
        Ok(()),
        "tcp ignores the health route"
    );
    m.kill().await;
    assert!(probe(&inst, &Probe::Tcp)
        .await
        .unwrap_err()
        .contains("connect"));
}

#[tokio::test]
async fn a_garbage_speaking_instance_fails_its_probe() {
    let m = mock().await;
    m.set_mode(FailureMode::Garbage);
    let inst = InstanceState::new(parse_endpoint(&m.url()).unwrap());
    assert!(probe(
        &inst,
        &Probe::Http {
            path: "/health".into()
        }
    )
    .await
    .is_err());
}

#[tokio::test]
async fn the_checker_marks_down_after_the_threshold_and_up_after_recovery() {
    let m = mock().await;
    let yaml = format!(
        "health_check: {{ interval: 50ms, timeout: 200ms, failure_threshold: 3, recovery_threshold: 2, jitter: 0 }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\n",
        m.url()
    );
    let gw = Gateway::new(fulcrum_config::parse(&yaml, &|_| None).unwrap());
    let _hc = HealthChecker::start(&gw);
    let healthy = || gw.stats()[0].instances[0].stats.healthy;
    let wait_for = |want: bool| async move {
        for _ in 0..100 {
            if healthy() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("instance never became healthy={want}");
    };
    m.set_healthy(false);
    let before = m.stats().health_checks;
    wait_for(false).await;
    assert!(
        m.stats().health_checks - before >= 3,
        "went down before 3 failed probes"
    );
    m.set_healthy(true);
    wait_for(true).await;
}

#[tokio::test]
async fn an_instance_down_or_between_states_is_probed_at_the_fast_interval() {
    let m = mock().await;
    m.set_healthy(false);
    let yaml = format!(
        "health_check: {{ interval: 1s, fast_interval: 50ms, timeout: 200ms, failure_threshold: 2, recovery_threshold: 2, jitter: 0 }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\n",
        m.url()
    );
    let gw = Gateway::new(fulcrum_config::parse(&yaml, &|_| None).unwrap());
    let _hc = HealthChecker::start(&gw);
    let healthy = || gw.stats()[0].instances[0].stats.healthy;
    // At the normal 1 s interval both of these would take over a second.
    let within = |want: bool, limit: Duration| async move {
        let t0 = tokio::time::Instant::now();
        while healthy() != want {
            assert!(
                t0.elapsed() < limit,
                "not healthy={want} within {limit:?} (fast_interval ignored?)"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    within(false, Duration::from_millis(700)).await;
    m.set_healthy(true);
    within(true, Duration::from_millis(700)).await;
    // Up and settled: back to the normal interval.
    let before = m.stats().health_checks;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        m.stats().health_checks - before <= 1,
        "a settled instance is probed at the normal interval"
    );
}
