//! `GET /metrics` (issue #12 item 1): the counters add up exactly to the
//! requests sent, the text passes `promtool check metrics`, the format
//! follows `Accept`, `metrics.enabled: false` turns it off, and every
//! metric the alert rules and the Grafana dashboard use is served.

use crate::common::*;
use fulcrum_mock::FailureMode;
use std::collections::BTreeMap;

/// Samples of a Prometheus text answer: (name, labels) → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").expect("k=\"v\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        let v = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        out.insert((name, labels), v);
    }
    out
}

/// The sum of `name`'s samples whose labels include every one of `want`.
fn sum(s: &Samples, name: &str, want: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|((n, l), _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(gw: &fulcrum::app::Running, accept: Option<&str>) -> Resp {
    let url = format!("http://{}/metrics", gw.admin_addr);
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    send(&client(), http::Method::GET, &url, b"", &headers).await
}

/// Scrapes (classic format) until `n` requests are counted: a request is
/// counted when its response body ends on the gateway's side, which can be
/// a moment after the client read its last byte. At most 5 s.
async fn settled(gw: &fulcrum::app::Running, n: f64) -> (String, Samples) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = scrape(gw, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        let s = parse(&text);
        let counted = sum(&s, "fulcrum_requests_total", &[]);
        if counted == n || tokio::time::Instant::now() >= deadline {
            return (text, s);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs `promtool check metrics` on `text`; a missing promtool fails the
/// test with what to install.
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| {
        panic!(
            "promtool is needed to check /metrics ({e}): install Debian's `prometheus` package \
             (scripts/install-promtool does it without starting a server; scripts/test runs it)"
        )
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check metrics:\n{said}");
    assert!(said.trim().is_empty(), "promtool lint findings:\n{said}");
}

/// The must-show: a known number of requests — answered 200,
/// answered 503 by an instance, sent to a dead instance and retried on a
/// live one, and with no route — and the counters add up exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_add_up_exactly_to_the_requests_sent() {
    let (ok, busy, live) = (mock("ok").await, mock("busy").await, mock("live").await);
    busy.set_mode(FailureMode::Overloaded);
    let dead = mock("dead").await;
    let dead_url = dead.url();
    dead.kill().await;
    // No probes after the first (the dead instance stays "up" for the
    // balancer, so its tries are real connect errors); no passive ejection
    // limit is relied on: the dead one's tries are counted, whatever they are.
    let yaml = format!(
        "health_check: {{ interval: 1h, jitter: 0, failure_threshold: 100 }}\n\
         pools:\n\
         \x20 ok: {{ algorithm: round_robin, instances: [ {{ endpoint: \"{}\" }} ] }}\n\
         \x20 busy: {{ algorithm: round_robin, instances: [ {{ endpoint: \"{}\" }} ] }}\n\
         \x20 retry:\n\
         \x20   algorithm: round_robin\n\
         \x20   retry: {{ tries: 2, on: [error] }}\n\
         \x20   instances: [ {{ endpoint: \"{dead_url}\" }}, {{ endpoint: \"{}\" }} ]\n\
         routes:\n\
         \x20 - {{ path_prefix: /ok/, pool: ok }}\n\
         \x20 - {{ path_prefix: /busy/, pool: busy }}\n\
         \x20 - {{ path_prefix: /retry/, pool: retry }}\n",
        ok.url(),
        busy.url(),
        live.url()
    );
    let gw = gateway(&yaml).await;
    let c = client();
    let base = format!("http://{}", gw.proxy_addr);
    let (n_ok, n_busy, n_retry, n_none) = (7, 4, 6, 3);
    for _ in 0..n_ok {
        assert_eq!(get(&c, &format!("{base}/ok/x")).await.status, 200);
    }
    for _ in 0..n_busy {
        assert_eq!(get(&c, &format!("{base}/busy/x")).await.status, 503);
    }
    for _ in 0..n_retry {
        let r = get(&c, &format!("{base}/retry/x")).await;
        assert_eq!((r.status.as_u16(), r.instance()), (200, "live".into()));
    }
    for _ in 0..n_none {
        assert_eq!(get(&c, &format!("{base}/nowhere")).await.status, 404);
    }

    let (text, s) = settled(&gw, f64::from(n_ok + n_busy + n_retry + n_none)).await;
    promtool_check(&text);
    let req = |want: &[(&str, &str)]| sum(&s, "fulcrum_requests_total", want);
    let (ok_ep, busy_ep, live_ep) = (ok.url(), busy.url(), live.url());

    // Per pool, instance and class, exactly.
    assert_eq!(
        req(&[("pool", "ok"), ("instance", &ok_ep), ("class", "2xx")]),
        7.0
    );
    assert_eq!(
        req(&[("pool", "busy"), ("instance", &busy_ep), ("class", "5xx")]),
        4.0
    );
    assert_eq!(
        req(&[("pool", "retry"), ("instance", &live_ep), ("class", "2xx")]),
        6.0
    );
    assert_eq!(
        req(&[("pool", "-"), ("instance", "-"), ("class", "4xx")]),
        3.0
    );
    assert_eq!(
        req(&[]),
        f64::from(n_ok + n_busy + n_retry + n_none),
        "{text}"
    );
    assert_eq!(
        req(&[("instance", &dead_url)]),
        0.0,
        "no answer came from the dead one"
    );

    // Histogram counts: one per request, per pool.
    for (pool, n) in [
        ("ok", n_ok),
        ("busy", n_busy),
        ("retry", n_retry),
        ("-", n_none),
    ] {
        let n = f64::from(n);
        let p = [("pool", pool)];
        assert_eq!(
            sum(&s, "fulcrum_request_duration_seconds_count", &p),
            n,
            "{pool}"
        );
        assert_eq!(
            sum(&s, "fulcrum_response_head_seconds_count", &p),
            n,
            "{pool}"
        );
        let inf = [("pool", pool), ("le", "+Inf")];
        assert_eq!(sum(&s, "fulcrum_request_duration_seconds_bucket", &inf), n);
        assert_eq!(req(&p), n, "{pool}");
    }

    // Tries: one per pick; the dead instance's tries were all retried
    // (connect errors), so the live one took one per request.
    let tries = |want: &[(&str, &str)]| sum(&s, "fulcrum_tries_total", want);
    let dead_tries = tries(&[("pool", "retry"), ("instance", &dead_url)]);
    assert!(
        dead_tries >= 1.0,
        "round robin sent the dead one a try: {text}"
    );
    assert_eq!(tries(&[("pool", "retry"), ("instance", &live_ep)]), 6.0);
    assert_eq!(
        sum(
            &s,
            "fulcrum_retries_total",
            &[("pool", "retry"), ("reason", "connect_error")]
        ),
        dead_tries
    );
    assert_eq!(
        sum(&s, "fulcrum_retries_total", &[]),
        dead_tries,
        "no other retry"
    );
    for pool in ["ok", "busy", "retry"] {
        let p = [("pool", pool)];
        assert_eq!(
            sum(&s, "fulcrum_picks_total", &p),
            tries(&p),
            "picks of {pool}"
        );
    }
    assert_eq!(tries(&[("pool", "ok")]), 7.0);
    assert_eq!(tries(&[("pool", "busy")]), 4.0);
    assert_eq!(
        sum(
            &s,
            "fulcrum_picks_total",
            &[("pool", "ok"), ("reason", "algorithm")]
        ),
        7.0
    );
    // The 503 came with Retry-After: the instance cooled down, and the
    // next picks were of a cooling-down instance, nothing else being usable.
    let busy_picks = |r| {
        sum(
            &s,
            "fulcrum_picks_total",
            &[("pool", "busy"), ("reason", r)],
        )
    };
    assert_eq!(
        busy_picks("algorithm") + busy_picks("ejected_fallback"),
        4.0
    );
    assert!(
        sum(
            &s,
            "fulcrum_instance_cooldowns_total",
            &[("instance", &busy_ep)]
        ) >= 1.0
    );

    // State gauges are there for every membership.
    for ep in [&ok_ep, &busy_ep, &live_ep, &dead_url] {
        let i = [("instance", ep.as_str())];
        assert_eq!(sum(&s, "fulcrum_instance_weight", &i), 1.0, "{ep}");
        assert_eq!(sum(&s, "fulcrum_instance_in_flight", &i), 0.0, "{ep}");
    }
    assert_eq!(
        sum(&s, "fulcrum_instance_share_ratio", &[("instance", &ok_ep)]),
        1.0
    );
    assert_eq!(
        sum(
            &s,
            "fulcrum_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_is_served_when_the_scraper_asks_for_it() {
    let gw = gateway("").await;
    let r = scrape(
        &gw,
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // OpenMetrics types a counter by its family name, without `_total`.
    assert!(
        text.contains("# TYPE fulcrum_config_reloads counter\n"),
        "{text}"
    );
    assert!(
        text.contains("fulcrum_config_reloads_total{result=\"ok\"} 0\n"),
        "{text}"
    );

    // The classic format: `_total` in HELP and TYPE, no EOF, no UNIT.
    let text = String::from_utf8(scrape(&gw, None).await.body.to_vec()).unwrap();
    assert!(
        text.contains("# TYPE fulcrum_config_reloads_total counter\n"),
        "{text}"
    );
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(text.contains("# TYPE fulcrum_build_info gauge\n"), "{text}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_off_the_endpoint_is_not_found() {
    let gw = gateway("metrics: { enabled: false }\n").await;
    assert_eq!(scrape(&gw, None).await.status, 404);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_registry_events_are_counted() {
    let m = mock("m").await;
    let gw = gateway("").await;
    let c = client();
    let body = serde_json::json!({"service_id": "s", "task_types": ["t"], "endpoint": format!("{}/infer", m.url())});
    assert_eq!(register(&c, &gw, body).await.status, 200);
    let hb = registry_api(&gw, "/heartbeat/s");
    assert_eq!(
        send(&c, http::Method::POST, &hb, b"", &[]).await.status,
        200
    );
    let cfg = gw.gateway.snapshot().config.as_ref().clone();
    // Started without a file: nothing to read again, a failed reload.
    assert!(gw.reload_file().is_err());
    assert!(gw.reload(cfg).is_ok());
    let s = parse(std::str::from_utf8(&scrape(&gw, None).await.body).unwrap());
    assert_eq!(sum(&s, "fulcrum_registry_instances", &[]), 1.0);
    assert_eq!(sum(&s, "fulcrum_registry_registrations_total", &[]), 1.0);
    assert_eq!(sum(&s, "fulcrum_registry_heartbeats_total", &[]), 1.0);
    assert_eq!(sum(&s, "fulcrum_registry_expiries_total", &[]), 0.0);
    assert_eq!(
        sum(&s, "fulcrum_config_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        sum(&s, "fulcrum_config_reloads_total", &[("result", "failed")]),
        1.0
    );
    gw.shutdown().await;
}

/// Every metric name the alert rules and the Grafana dashboard use is in a
/// real `/metrics` answer, so neither can drift from what is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_served() {
    let (a, b) = (mock("a").await, mock("b").await);
    let yaml = format!(
        "pools:\n  p:\n    cache: {{}}\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(),
        b.url()
    );
    let gw = gateway(&yaml).await;
    let c = client();
    for _ in 0..4 {
        let r = get(&c, &format!("http://{}/x", gw.proxy_addr)).await;
        assert_eq!(r.status, 200);
    }
    let (text, samples) = settled(&gw, 4.0).await;
    // Cache hits (if any) count in their pool too, under instance "-".
    let p = [("pool", "p")];
    assert_eq!(sum(&samples, "fulcrum_requests_total", &p), 4.0, "{text}");
    assert_eq!(
        sum(&samples, "fulcrum_request_duration_seconds_count", &p),
        4.0
    );
    let hits = sum(&samples, "fulcrum_cache_hits_total", &p);
    assert_eq!(
        sum(
            &samples,
            "fulcrum_requests_total",
            &[("pool", "p"), ("instance", "-")]
        ),
        hits
    );
    let served: std::collections::BTreeSet<String> = samples.into_keys().map(|(n, _)| n).collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/fulcrum.json",
    ] {
        let src = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
        let mut used = std::collections::BTreeSet::new();
        let bytes = src.as_bytes();
        let mut i = 0;
        while let Some(at) = src[i..].find("fulcrum_") {
            let start = i + at;
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
            used.insert(src[start..end].to_string());
            i = end;
        }
        assert!(!used.is_empty(), "{file} names no metric");
        if file.ends_with(".json") {
            // A Grafana JSON model: a Prometheus data source variable, and
            // every panel queries through it.
            let d: serde_json::Value = serde_json::from_str(&src).expect("valid JSON");
            let vars = d["templating"]["list"].as_array().expect("variables");
            assert!(vars
                .iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"));
            for p in d["panels"].as_array().expect("panels") {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
                assert!(
                    !p["targets"].as_array().unwrap().is_empty(),
                    "{}",
                    p["title"]
                );
            }
        }
        let missing: Vec<_> = used.iter().filter(|n| !served.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics /metrics does not serve: {missing:?}"
        );
    }
    gw.shutdown().await;
}
