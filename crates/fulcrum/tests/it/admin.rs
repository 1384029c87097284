use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_readiness_and_pool_stats() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "pools: {{ p: {{ algorithm: least_connections, instances: [ {{ endpoint: \"{}\", weight: 3, max_concurrent: 7, priority: high }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url()
    ))
    .await;
    let c = client();
    for _ in 0..3 {
        get(&c, &format!("http://{}/", gw.proxy_addr)).await;
    }
    let admin = format!("http://{}", gw.admin_addr);
    assert_eq!(get(&c, &format!("{admin}/healthz")).await.status, 200);
    assert_eq!(get(&c, &format!("{admin}/readyz")).await.status, 200);
    let j = get(&c, &format!("{admin}/api/v1/pools")).await.json();
    let p = &j["pools"][0];
    assert_eq!(p["name"], "p");
    assert_eq!(p["algorithm"], "least_connections");
    let i = &p["instances"][0];
    assert_eq!(i["endpoint"], a.url());
    assert_eq!(i["weight"], 3);
    assert_eq!(i["max_concurrent"], 7);
    assert_eq!(i["priority"], "high");
    assert_eq!(i["healthy"], true);
    assert_eq!(i["requests"], 3);
    assert_eq!(i["in_flight"], 0);
    assert_eq!(i["failures"], 0);
    let r = get(&c, &format!("{admin}/nope")).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_counters_and_applies_new_weights() {
    let (a, b) = (mock("a").await, mock("b").await);
    let header = test_header();
    let yaml = |wb: u32| {
        format!(
            "{}pools: {{ p: {{ algorithm: weighted_round_robin, instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\", weight: {wb} }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            header,
            a.url(),
            b.url()
        )
    };
    let gw = fulcrum::app::start(fulcrum_config::parse(&yaml(1), &|_| None).unwrap())
        .await
        .unwrap();
    let c = client();
    for _ in 0..10 {
        get(&c, &format!("http://{}/", gw.proxy_addr)).await;
    }
    gw.reload(fulcrum_config::parse(&yaml(4), &|_| None).unwrap())
        .unwrap();
    for _ in 0..10 {
        get(&c, &format!("http://{}/", gw.proxy_addr)).await;
    }
    assert_eq!(stats(&gw, "p", &a.url()).stats.requests, 5 + 2);
    assert_eq!(stats(&gw, "p", &b.url()).stats.requests, 5 + 8);
    assert_eq!(stats(&gw, "p", &b.url()).weight, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_admin_call() {
    let gw = gateway("").await;
    let r = get(
        &client(),
        &format!("http://{}/api/openapi.json", gw.admin_addr),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/pools",
        "/api/v1/instances",
        "/api/v1/instances/{id}/drain",
        "/api/v1/instances/{id}/enable",
        "/api/v1/instances/{id}/weight",
        "/api/v1/ai_analysis/register",
        "/api/v1/ai_analysis/heartbeat/{id}",
        "/api/v1/ai_analysis/unregister/{id}",
        "/api/v1/ai_analysis/clear_all",
        "/api/v1/ai_analysis/services",
        "/api/v1/ai_analysis/services/stats/{task_type}",
        "/api/v1/ai_analysis/load_balance/info",
        "/api/v1/ai_analysis/load_balance/analysis",
        "/api/v1/ai_analysis/inference_stats",
        "/api/v1/ai_analysis/inference_stats/reset",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
}
