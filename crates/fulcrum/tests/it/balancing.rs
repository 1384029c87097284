use crate::common::*;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_3_2_1_give_exact_shares_of_6000_requests() {
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let gw = gateway(&format!(
        "pools:\n  p:\n    algorithm: weighted_round_robin\n    instances:\n      - {{ endpoint: \"{}\", weight: 3 }}\n      - {{ endpoint: \"{}\", weight: 2 }}\n      - {{ endpoint: \"{}\", weight: 1 }}\nroutes:\n  - {{ path_prefix: /, pool: p }}\n",
        a.url(), b.url(), c.url()
    ))
    .await;
    let url = format!("http://{}/fast", gw.proxy_addr);
    let counts = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (url, counts) = (url.clone(), counts.clone());
            tokio::spawn(async move {
                let c = client();
                for _ in 0..375 {
                    let r = get(&c, &url).await;
                    assert_eq!(r.status, 200);
                    *counts.lock().unwrap().entry(r.instance()).or_default() += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap();
    let share = |n: &str| counts.get(n).copied().unwrap_or(0) as f64 / 6000.0 * 100.0;
    for (name, want) in [("a", 50.0), ("b", 33.333), ("c", 16.667)] {
        let got = share(name);
        assert!(
            (got - want).abs() <= 1.0,
            "{name}: {got:.2}% vs {want}% ({counts:?})"
        );
    }
    assert_eq!(
        a.stats().requests + b.stats().requests + c.stats().requests,
        6000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_between_instances() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "pools:\n  p:\n    algorithm: round_robin\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(), b.url()
    ))
    .await;
    let c = client();
    let mut seq = vec![];
    for _ in 0..6 {
        seq.push(
            get(&c, &format!("http://{}/", gw.proxy_addr))
                .await
                .instance(),
        );
    }
    for w in seq.windows(2) {
        assert_ne!(w[0], w[1], "{seq:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_sends_less_to_the_slow_instance() {
    use fulcrum_mock::{Latency, MockConfig};
    use std::time::Duration;
    let slow = mock_with(MockConfig {
        name: "slow".into(),
        latency: Latency::Fixed(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    let fast = mock_with(MockConfig {
        name: "fast".into(),
        latency: Latency::Fixed(Duration::from_millis(5)),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "pools:\n  p:\n    algorithm: least_connections\n    instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        slow.url(), fast.url()
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = client();
                for _ in 0..25 {
                    assert_eq!(get(&c, &url).await.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (s, f) = (slow.stats().requests, fast.stats().requests);
    assert_eq!(s + f, 100);
    assert!(
        f >= 4 * s,
        "fast {f} vs slow {s}: least_connections should favour the fast instance"
    );
    assert!(
        slow.stats().max_in_flight <= 2,
        "slow instance piled up: {:?}",
        slow.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_is_never_exceeded_and_the_queue_absorbs_bursts() {
    use fulcrum_mock::{Latency, MockConfig};
    use std::time::Duration;
    let cfg = |n: &str| MockConfig {
        name: n.into(),
        latency: Latency::Fixed(Duration::from_millis(20)),
        ..Default::default()
    };
    let (a, b) = (mock_with(cfg("a")).await, mock_with(cfg("b")).await);
    let gw = gateway(&format!(
        "pools:\n  p:\n    algorithm: least_connections\n    queue: {{ max: 100, timeout: 10s }}\n    instances: [ {{ endpoint: \"{}\", max_concurrent: 2 }}, {{ endpoint: \"{}\", max_concurrent: 2 }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(), b.url()
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = client();
                for _ in 0..10 {
                    assert_eq!(get(&c, &url).await.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        a.stats().max_in_flight <= 2 && b.stats().max_in_flight <= 2,
        "{:?} {:?}",
        a.stats(),
        b.stats()
    );
    assert_eq!(a.stats().requests + b.stats().requests, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    use fulcrum_mock::{Latency, MockConfig};
    use std::time::Duration;
    let a = mock_with(MockConfig {
        name: "a".into(),
        latency: Latency::Fixed(Duration::from_millis(500)),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "pools:\n  p:\n    queue: {{ max: 0 }}\n    instances: [ {{ endpoint: \"{}\", max_concurrent: 1 }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url()
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let first = tokio::spawn({
        let url = url.clone();
        async move { get(&client(), &url).await.status }
    });
    eventually(Duration::from_secs(2), "first request in flight", || {
        a.stats().in_flight == 1
    })
    .await;
    let r = get(&client(), &url).await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json()["pool"], "p");
    assert_eq!(first.await.unwrap(), 200);
}
