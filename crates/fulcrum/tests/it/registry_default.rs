//! A pool formed by registration, with nothing in the config about it,
//! is balanced by `response_time` (`registry.default_algorithm`'s
//! default; docs/SIMULATION.md, "registry_default"), and the platform's
//! API still counts every call, whatever the algorithm.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use serde_json::json;
use std::time::Duration;

const PEOPLE: &str = "%E4%BA%BA%E6%95%B0%E7%BB%9F%E8%AE%A1"; // 人数统计

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_pool_defaults_to_response_time_and_the_platform_api_still_counts_calls() {
    let slow = mock_with(MockConfig {
        name: "slow".into(),
        latency: Latency::Fixed(Duration::from_millis(300)),
        ..Default::default()
    })
    .await;
    let fast = mock("fast").await;
    let gw = gateway("").await;
    let c = client();
    for (sid, m) in [("slow", &slow), ("fast", &fast)] {
        let body = json!({"service_id": sid, "name": sid, "task_types": ["人数统计"],
            "endpoint": format!("{}/infer", m.url()), "version": "1"});
        assert_eq!(register(&c, &gw, body).await.status, 200);
    }
    let pool = pool_json(&c, &gw, "人数统计").await;
    assert_eq!(pool["algorithm"], "response_time", "{pool}");

    const N: u64 = 60;
    for _ in 0..N {
        let r = post(
            &c,
            &format!("http://{}/infer/{PEOPLE}", gw.proxy_addr),
            b"{}",
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let (to_slow, to_fast) = (slow.stats().requests, fast.stats().requests);
    assert_eq!(to_slow + to_fast, N);
    // One answer of 300 ms against ~0 ms: the slow one is avoided from
    // then on (its estimate decays with τ = 10 s, far longer than this run).
    assert!(to_slow <= 5, "slow {to_slow}, fast {to_fast}");

    // The platform's API counts each instance's calls as the instances do.
    let list = get(&c, &registry_api(&gw, "/services")).await.json();
    for s in list["services"].as_array().unwrap() {
        let m = if s["service_id"] == "slow" {
            &slow
        } else {
            &fast
        };
        assert_eq!(s["call_count"], m.stats().requests, "{s}");
    }
    let info = get(&c, &registry_api(&gw, "/load_balance/info"))
        .await
        .json();
    assert_eq!(info["task_types"]["人数统计"]["total_calls"], N);
    assert_eq!(info["task_types"]["人数统计"]["max_calls"], to_fast);
    assert_eq!(info["task_types"]["人数统计"]["min_calls"], to_slow);
    let console: u64 = info["load_balance"]["人数统计"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["call_count"].as_u64().unwrap())
        .sum();
    assert_eq!(console, N);
    let analysis = get(&c, &registry_api(&gw, "/load_balance/analysis"))
        .await
        .json();
    let a = &analysis["analysis"]["人数统计"];
    assert_eq!(a["total_calls"], N);
    assert_eq!(
        a["verdict"], "poor",
        "calls are uneven by design: the verdict judges evenness, least_calls' aim"
    );
    let stats = get(&c, &registry_api(&gw, "/inference_stats")).await.json();
    assert_eq!(stats["total_requests"], N);
}
