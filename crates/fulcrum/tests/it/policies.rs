//! The balancing policies end to end through the proxy (issue 3's
//! acceptance scenarios that need real sockets; the latency comparisons
//! run in the simulator, crates/sim).

use crate::common::*;
use fulcrum_mock::{FailureMode, Latency, MockConfig, MockServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn slow(name: &str, ms: u64) -> MockServer {
    mock_with(MockConfig {
        name: name.into(),
        latency: Latency::Fixed(Duration::from_millis(ms)),
        ..Default::default()
    })
    .await
}

fn config(alg: &str, extra: &str, instances: &[String]) -> String {
    format!(
        "health_check: {{ interval: 100ms, timeout: 200ms, failure_threshold: 1, recovery_threshold: 1 }}\n\
         pools:\n  p:\n    algorithm: {alg}\n{extra}    instances:\n{}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        instances.iter().map(|i| format!("      - {i}\n")).collect::<String>()
    )
}

fn ep(url: &str) -> String {
    format!("{{ endpoint: \"{url}\" }}")
}

/// Runs `clients` concurrent loops of `each` GETs; returns answers by instance.
async fn load(url: &str, clients: usize, each: usize) -> HashMap<String, usize> {
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (url, counts) = (url.to_string(), counts.clone());
            tokio::spawn(async move {
                let c = client();
                for _ in 0..each {
                    let r = get(&c, &url).await;
                    assert_eq!(r.status, 200, "{:?}", r.body);
                    *counts.lock().unwrap().entry(r.instance()).or_insert(0) += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let c = counts.lock().unwrap().clone();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keeps_each_device_on_one_instance_and_moves_only_the_sick_ones() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let gw = gateway(&config(
        "consistent_hash",
        "    hash_key: header:Device-Id\n",
        &[ep(&a.url()), ep(&b.url()), ep(&c.url())],
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let cl = client();
    let route = |dev: usize| {
        let (cl, url) = (cl.clone(), url.clone());
        async move {
            let d = format!("dev-{dev}");
            send(
                &cl,
                http::Method::GET,
                &url,
                b"",
                &[("device-id", d.as_str())],
            )
            .await
            .instance()
        }
    };
    let mut home = vec![];
    for d in 0..200 {
        home.push(route(d).await);
    }
    for (d, h) in home.iter().enumerate() {
        assert_eq!(&route(d).await, h, "device {d} moved while nothing changed");
    }
    let mut per: HashMap<&str, usize> = HashMap::new();
    for h in &home {
        *per.entry(h.as_str()).or_insert(0) += 1;
    }
    let (min, max) = (per.values().min().unwrap(), per.values().max().unwrap());
    assert_eq!(per.len(), 3);
    assert!(*max <= 2 * *min, "spread {per:?}");

    b.set_healthy(false);
    eventually(Duration::from_secs(5), "b marked down", || {
        !stats(&gw, "p", &b.url()).stats.healthy
    })
    .await;
    for (d, h) in home.iter().enumerate() {
        let now = route(d).await;
        if h == "b" {
            assert_ne!(now, "b", "device {d} still on the unhealthy instance");
        } else {
            assert_eq!(&now, h, "device {d} moved although its instance is healthy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_instance_takes_idle_traffic_and_a_low_one_the_overflow() {
    let (high, low) = (slow("high", 50).await, slow("low", 50).await);
    let gw = gateway(&config(
        "least_connections",
        "",
        &[
            format!(
                "{{ endpoint: \"{}\", priority: high, max_concurrent: 2 }}",
                high.url()
            ),
            format!("{{ endpoint: \"{}\", priority: low }}", low.url()),
        ],
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let idle = load(&url, 1, 10).await;
    assert_eq!(idle.get("high"), Some(&10), "{idle:?}");
    let busy = load(&url, 8, 10).await;
    assert!(
        busy.get("low").copied().unwrap_or(0) > 0,
        "no overflow: {busy:?}"
    );
    assert!(high.stats().max_in_flight <= 2, "{:?}", high.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_at_max_concurrent_4_serve_600_requests_from_24_clients() {
    let ms = [
        slow("a", 10).await,
        slow("b", 10).await,
        slow("c", 10).await,
    ];
    let inst: Vec<String> = ms
        .iter()
        .map(|m| format!("{{ endpoint: \"{}\", max_concurrent: 4 }}", m.url()))
        .collect();
    let gw = gateway(&config(
        "least_connections",
        "    queue: { max: 100, timeout: 10s }\n",
        &inst,
    ))
    .await;
    let counts = load(&format!("http://{}/", gw.proxy_addr), 24, 25).await;
    assert_eq!(counts.values().sum::<usize>(), 600);
    for m in &ms {
        assert!(m.stats().max_in_flight <= 4, "{:?}", m.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_cools_the_instance_down() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Overloaded);
    let gw = gateway(&config("round_robin", "", &[ep(&a.url()), ep(&b.url())])).await;
    let url = format!("http://{}/", gw.proxy_addr);
    let c = client();
    let mut saw_503 = false;
    for _ in 0..2 {
        saw_503 |= get(&c, &url).await.status == 503;
    }
    assert!(saw_503, "the instance's 503 is passed on");
    let before = a.stats().requests;
    for _ in 0..20 {
        assert_eq!(get(&c, &url).await.instance(), "b");
    }
    assert_eq!(
        a.stats().requests,
        before,
        "no traffic during the Retry-After pause"
    );
    a.set_mode(FailureMode::Normal);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = load(&url, 1, 10).await;
    assert!(
        after.contains_key("a"),
        "a gets traffic once the pause is over: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_calls_evens_counts_and_a_newcomer_is_not_flooded() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let yaml = |insts: &[String]| format!("{}{}", test_header(), config("least_calls", "", insts));
    let cfg = |insts: &[String]| fulcrum_config::parse(&yaml(insts), &|_| None).unwrap();
    let gw = fulcrum::app::start(cfg(&[ep(&a.url()), ep(&b.url())]))
        .await
        .unwrap();
    let url = format!("http://{}/", gw.proxy_addr);
    let first = load(&url, 1, 100).await;
    assert_eq!((first["a"], first["b"]), (50, 50));
    gw.reload(cfg(&[ep(&a.url()), ep(&b.url()), ep(&c.url())]))
        .unwrap();
    let next = load(&url, 1, 30).await;
    assert_eq!(
        next.get("c"),
        Some(&10),
        "the newcomer takes its third, not all 30: {next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_ramps_a_newly_added_instance() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let yaml = |insts: &[String]| {
        format!(
            "{}{}",
            test_header(),
            config("weighted_round_robin", "    slow_start: 60s\n", insts)
        )
    };
    // Default weights (1): slow start still ramps them (from a tenth).
    let cfg = |insts: &[String]| fulcrum_config::parse(&yaml(insts), &|_| None).unwrap();
    let gw = fulcrum::app::start(cfg(&[ep(&a.url()), ep(&b.url())]))
        .await
        .unwrap();
    let url = format!("http://{}/", gw.proxy_addr);
    gw.reload(cfg(&[ep(&a.url()), ep(&b.url()), ep(&c.url())]))
        .unwrap();
    let early = load(&url, 1, 42).await;
    // ~1/21 of the traffic at first, against 1/3 (14) without slow start.
    assert!(early.get("c").copied().unwrap_or(0) <= 4, "{early:?}");
    assert!(
        early.get("c").copied().unwrap_or(0) >= 1,
        "ramps from a tenth, not from nothing: {early:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_time_steers_away_from_a_slow_instance() {
    let (fast, slowest) = (slow("fast", 5).await, slow("slow", 100).await);
    let gw = gateway(&config(
        "response_time",
        "",
        &[ep(&fast.url()), ep(&slowest.url())],
    ))
    .await;
    let counts = load(&format!("http://{}/", gw.proxy_addr), 4, 30).await;
    let s = counts.get("slow").copied().unwrap_or(0);
    assert!(
        s * 100 / 120 < 15,
        "slow instance got {s} of 120: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_are_served_in_arrival_order() {
    let a = slow("a", 150).await;
    let gw = gateway(&config(
        "round_robin",
        "    queue: { max: 10, timeout: 10s }\n",
        &[format!(
            "{{ endpoint: \"{}\", max_concurrent: 1 }}",
            a.url()
        )],
    ))
    .await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = vec![];
    for i in 0..5 {
        let (url, order) = (format!("http://{}/", gw.proxy_addr), order.clone());
        tasks.push(tokio::spawn(async move {
            assert_eq!(get(&client(), &url).await.status, 200);
            order.lock().unwrap().push(i);
        }));
        // Arrive one after another while the first still holds the slot.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(a.stats().max_in_flight, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_based_follows_the_instances_load_reports() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_load_report(Some("TEXT cpu_utilization=0.9, mem_utilization=0.8"));
    b.set_load_report(Some(
        r#"JSON {"cpu_utilization":0.1,"mem_utilization":0.2}"#,
    ));
    let gw = gateway(&config("resource_based", "", &[ep(&a.url()), ep(&b.url())])).await;
    let counts = load(&format!("http://{}/", gw.proxy_addr), 1, 20).await;
    // Until each has reported once both count as half loaded; then b wins.
    assert!(counts.get("b").copied().unwrap_or(0) >= 18, "{counts:?}");
    // The picture flips when the reports do.
    a.set_load_report(Some("TEXT cpu_utilization=0.05, mem_utilization=0.1"));
    b.set_load_report(Some("TEXT cpu_utilization=0.95, mem_utilization=0.9"));
    let _ = load(&format!("http://{}/", gw.proxy_addr), 1, 2).await;
    let later = load(&format!("http://{}/", gw.proxy_addr), 1, 20).await;
    assert!(later.get("a").copied().unwrap_or(0) >= 18, "{later:?}");
}
