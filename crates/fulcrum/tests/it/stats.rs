//! The admin plane's error counts and recent window (issue #12 item 2)
//! through the whole gateway: `error_rate` is measured whatever the
//! pool's algorithm, and `/api/v1/pools` shows the `window` object.

use crate::common::*;
use fulcrum_mock::FailureMode;

fn pool_yaml(algorithm: &str, urls: &[String], extra: &str) -> String {
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    format!(
        "health_check: {{ interval: 1h, jitter: 0 }}\n\
         pools:\n  p:\n    algorithm: {algorithm}\n{extra}    instances: [ {} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        inst.join(", ")
    )
}

/// Before issue #12, `error_rate` stayed 0 unless the algorithm was
/// latency-aware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_robin_pool_counts_an_instance_answering_500s() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Error500);
    let gw = gateway(&pool_yaml("round_robin", &[a.url(), b.url()], "")).await;
    let c = client();
    for _ in 0..20 {
        let r = get(&c, &format!("http://{}/", gw.proxy_addr)).await;
        let want = if r.instance() == "a" { 500 } else { 200 };
        assert_eq!(r.status, want);
    }
    let sa = stats(&gw, "p", &a.url());
    assert_eq!((sa.stats.requests, sa.stats.errors), (10, 10));
    assert_eq!(sa.stats.error_rate, 1.0);
    assert_eq!((sa.window.requests, sa.window.errors), (10, 10));
    assert_eq!(sa.window.error_rate, 1.0);
    assert_eq!(
        sa.stats.failures, 0,
        "an unlisted 500 is passed on, not a failure"
    );
    let sb = stats(&gw, "p", &b.url());
    assert_eq!((sb.stats.errors, sb.stats.error_rate), (0, 0.0));
    assert_eq!((sb.window.errors, sb.window.error_rate), (0, 0.0));
    assert_eq!((sa.window.share, sb.window.share), (0.5, 0.5));
    assert!(sa.window.p99_ms.is_some(), "a 500 is an answer: timed");

    // The same numbers as the admin API shows them.
    let j = get(&c, &format!("http://{}/api/v1/pools", gw.admin_addr))
        .await
        .json();
    let row = pool_row(&j, a.url().as_str());
    assert_eq!(row["error_rate"], 1.0);
    assert_eq!(row["errors"], 10);
    let w = &row["window"];
    for key in [
        "secs",
        "requests",
        "rps",
        "errors",
        "error_rate",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "share",
    ] {
        assert!(!w[key].is_null(), "window.{key} missing: {row}");
    }
    assert_eq!(
        (w["secs"].as_u64(), w["error_rate"].as_f64()),
        (Some(60), Some(1.0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_ejected_for_repeated_500s_shows_its_error_rate() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Error500);
    let yaml = pool_yaml(
        "round_robin",
        &[a.url(), b.url()],
        "    retry: { tries: 2, on: [error, http_500] }\n",
    ) + "passive: { max_fails: 2, fail_timeout: 30s }\nstats: { window: 30s }\n";
    let gw = gateway(&yaml).await;
    let c = client();
    for _ in 0..10 {
        let r = get(&c, &format!("http://{}/", gw.proxy_addr)).await;
        assert_eq!((r.status.as_u16(), r.instance()), (200, "b".into()));
    }
    let sa = stats(&gw, "p", &a.url());
    assert!(sa.stats.ejected && sa.stats.ejections == 1, "{sa:?}");
    let tried = sa.stats.requests;
    assert!(tried >= 2, "{sa:?}");
    assert_eq!(
        (sa.stats.errors, sa.window.errors),
        (tried, tried),
        "{sa:?}"
    );
    assert_eq!((sa.stats.error_rate, sa.window.error_rate), (1.0, 1.0));
    assert_eq!(sa.window.secs, 30);
    let sb = stats(&gw, "p", &b.url());
    assert_eq!((sb.window.requests, sb.window.error_rate), (10, 0.0));
}
