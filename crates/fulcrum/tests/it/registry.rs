//! Self-registration with the video-analysis platform's API, end to end.

use crate::common::*;
use http::Method;
use serde_json::json;
use std::time::Duration;

const PEOPLE: &str = "%E4%BA%BA%E6%95%B0%E7%BB%9F%E8%AE%A1"; // 人数统计
const FALL: &str = "%E4%BA%BA%E5%91%98%E8%B7%8C%E5%80%92"; // 人员跌倒

use crate::common::registry_api as api;

fn body(service_id: &str, url: &str, tasks: &[&str]) -> serde_json::Value {
    json!({"service_id": service_id, "name": service_id, "task_types": tasks, "endpoint": format!("{url}/infer"), "version": "1.0"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_services_are_listed_once_and_balanced_by_calls() {
    let (y1, y2, multi) = (
        mock("yolo-1").await,
        mock("yolo-2").await,
        mock("multi").await,
    );
    // The platform's rule, named: the default is `response_time`
    // (registry_default.rs).
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", default_algorithm: least_calls }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    for (sid, m, tasks) in [
        ("yolo11x", &y1, vec!["人数统计"]),
        ("yolo11x", &y2, vec!["人数统计"]),
        ("pose", &multi, vec!["人数统计", "人员跌倒"]),
    ] {
        let r = register(&c, &gw, body(sid, &m.url(), &tasks)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let j = r.json();
        assert_eq!(j["ok"], true);
        assert_eq!(j["service_id"], sid);
        assert_eq!(j["instance_id"].as_str().unwrap().len(), 16);
    }
    // Re-registering an endpoint replaces it.
    assert_eq!(
        register(&c, &gw, body("yolo11x", &y1.url(), &["人数统计"]))
            .await
            .status,
        200
    );
    let list = get(&c, &api(&gw, "/services")).await.json();
    assert_eq!(list["total"], 3, "{list}");

    for _ in 0..300 {
        let r = send(
            &c,
            Method::POST,
            &format!("http://{}/infer/{PEOPLE}", gw.proxy_addr),
            br#"{"image_url":"x","task_type":"people"}"#,
            &[],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["path"],
            "/infer",
            "forwarded to the endpoint exactly as registered"
        );
    }
    for m in [&y1, &y2, &multi] {
        assert_eq!(m.stats().requests, 100, "least_calls spreads evenly");
    }
    let list = get(&c, &api(&gw, "/services")).await.json();
    let total: u64 = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["call_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 300);
    let stats = get(&c, &api(&gw, &format!("/services/stats/{FALL}")))
        .await
        .json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["task_type"], "人员跌倒");
    let info = get(&c, &api(&gw, "/load_balance/info")).await.json();
    assert_eq!(info["task_types"]["人数统计"]["total_calls"], 300);
    assert_eq!(info["task_types"]["人数统计"]["balance_quality"], 1.0);
    let inf = get(&c, &api(&gw, "/inference_stats")).await.json();
    assert_eq!(inf["total_requests"], 300);
    assert_eq!(
        send(
            &c,
            Method::POST,
            &api(&gw, "/inference_stats/reset"),
            b"",
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&c, &api(&gw, "/inference_stats")).await.json()["total_requests"],
        0
    );
    let r = send(
        &c,
        Method::POST,
        &format!("http://{}/infer/unknown", gw.proxy_addr),
        b"{}",
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("unknown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_get_400_and_change_nothing() {
    let m = mock("m").await;
    let gw = gateway("").await;
    let c = client();
    assert_eq!(
        register(&c, &gw, body("ok", &m.url(), &["t"])).await.status,
        200
    );
    let bad: Vec<(&[u8], &str)> = vec![
        (
            br#"{"service_id":"","task_types":["t"],"endpoint":"http://h:1/x"}"#,
            "service_id",
        ),
        (br#"{"service_id":"s","task_types":["t"]}"#, "endpoint"),
        (
            br#"{"service_id":"s","task_types":[],"endpoint":"http://h:1/x"}"#,
            "task_types",
        ),
        (
            br#"{"service_id":7,"task_types":["t"],"endpoint":"http://h:1/x"}"#,
            "service_id",
        ),
        (
            br#"{"service_id":"s","task_types":"t","endpoint":"http://h:1/x"}"#,
            "task_types",
        ),
        (
            br#"{"service_id":"s","task_types":["t"],"endpoint":"ftp://h:1/x"}"#,
            "endpoint",
        ),
        (
            br#"{"service_id":"s","task_types":["t"],"endpoint":"http://u:p@h:1/x"}"#,
            "credentials",
        ),
        (
            br#"{"service_id": "s", "task_types": ["t"], "endpoint": "http://h:1/x""#,
            "malformed JSON",
        ),
        (b"not json at all", "malformed JSON"),
    ];
    for (b, want) in bad {
        let r = send(&c, Method::POST, &api(&gw, "/register"), b, &[]).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(b));
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains(want), "{e}");
    }
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/register"),
        &vec![b' '; 100_000],
        &[],
    )
    .await;
    assert_eq!(r.status, 413, "oversized body");
    let list = get(&c, &api(&gw, "/services")).await.json();
    assert_eq!(list["total"], 1, "registry unchanged: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_unregister_and_clear_accept_every_id_form() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway("").await;
    let c = client();
    let ia = register(&c, &gw, body("svc", &a.url(), &["t"]))
        .await
        .json()["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    register(&c, &gw, body("svc", &b.url(), &["t"])).await;
    let hb = |id: String, body: &'static [u8]| {
        let c = c.clone();
        let url = api(&gw, &format!("/heartbeat/{id}"));
        async move { send(&c, Method::POST, &url, body, &[]).await }
    };
    let r = hb("svc".into(), b"").await;
    assert_eq!(
        r.json()["updated"],
        2,
        "by service_id: every instance of it"
    );
    let r = hb(ia.clone(), br#"{"total_requests":10,"avg_inference_time_ms":12.5,"last_inference_time_ms":11,"last_total_time_ms":15}"#).await;
    assert_eq!(r.json()["updated"], 1);
    let enc = format!("{}/infer", a.url())
        .replace(':', "%3A")
        .replace('/', "%2F");
    assert_eq!(
        hb(enc.clone(), b"").await.json()["updated"],
        1,
        "by percent-encoded endpoint"
    );
    assert_eq!(hb("nobody".into(), b"").await.status, 404);
    let r = hb(ia.clone(), br#"{"total_requests":"many"}"#).await;
    assert_eq!(r.status, 200, "bad stats never cost a service its liveness");
    assert!(
        r.json()["warning"]
            .as_str()
            .unwrap()
            .contains("total_requests"),
        "{:?}",
        r.body
    );
    let list = get(&c, &api(&gw, "/services")).await.json();
    let row = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instance_id"] == ia.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        row["stats"]["avg_inference_time_ms"], 12.5,
        "heartbeat stats are shown"
    );

    let r = send(
        &c,
        Method::DELETE,
        &api(&gw, &format!("/unregister/{enc}")),
        b"",
        &[],
    )
    .await;
    assert_eq!(r.json()["removed"], 1, "unregister by endpoint");
    assert_eq!(get(&c, &api(&gw, "/services")).await.json()["total"], 1);
    let r = send(&c, Method::POST, &api(&gw, "/clear_all"), b"", &[]).await;
    assert_eq!(r.json(), json!({"ok": true, "cleared_count": 1}));
    assert_eq!(get(&c, &api(&gw, "/services")).await.json()["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_stops_heartbeating_expires_on_time() {
    let m = mock("m").await;
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", heartbeat_timeout: 2s }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    register(&c, &gw, body("s", &m.url(), &["t"])).await;
    let t = std::time::Instant::now();
    eventually(Duration::from_secs(6), "expiry", || {
        gw.registry.as_ref().unwrap().list().is_empty()
    })
    .await;
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "expired early: {:?}",
        t.elapsed()
    );
    let r = send(
        &c,
        Method::POST,
        &format!("http://{}/infer/t", gw.proxy_addr),
        b"{}",
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "no longer routed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart() {
    let m = mock("m").await;
    let dir = scratch_dir();
    let yaml = format!("registry: {{ path: \"{dir}\" }}\n");
    let gw = gateway(&yaml).await;
    let c = client();
    register(&c, &gw, body("s", &m.url(), &["人数统计"])).await;
    gw.shutdown().await;
    let gw = gateway(&yaml).await;
    let list = get(&c, &api(&gw, "/services")).await.json();
    assert_eq!(list["total"], 1, "{list}");
    let r = send(
        &c,
        Method::POST,
        &format!("http://{}/infer/{PEOPLE}", gw.proxy_addr),
        b"{}",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_token_guards_mutating_calls() {
    let m = mock("m").await;
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", token: s3cret }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    let b = body("s", &m.url(), &["t"]).to_string();
    let r = send(&c, Method::POST, &api(&gw, "/register"), b.as_bytes(), &[]).await;
    assert_eq!(r.status, 401);
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/register"),
        b.as_bytes(),
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/register"),
        b.as_bytes(),
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&c, &api(&gw, "/services")).await.status,
        200,
        "reads stay open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_instance_failing_its_probe_gets_no_traffic() {
    let (good, sick) = (mock("good").await, mock("sick").await);
    sick.set_healthy(false);
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\" }}\nhealth_check: {{ interval: 100ms, failure_threshold: 1, recovery_threshold: 1 }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    register(&c, &gw, json!({"service_id":"g","task_types":["t"],"endpoint": format!("{}/infer", good.url()), "health_path": "/health"})).await;
    register(&c, &gw, json!({"service_id":"s","task_types":["t"],"endpoint": format!("{}/infer", sick.url()), "health_path": "/health"})).await;
    let sick_ep = format!("{}/infer", sick.url());
    eventually(Duration::from_secs(5), "sick marked down", || {
        !stats(&gw, "t", &sick_ep).stats.healthy
    })
    .await;
    let before = sick.stats().requests;
    for _ in 0..20 {
        assert_eq!(
            send(
                &c,
                Method::POST,
                &format!("http://{}/infer/t", gw.proxy_addr),
                b"{}",
                &[]
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(sick.stats().requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pools_entry_of_the_task_types_name_supplies_its_policy() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\" }}\npools:\n  人数统计: {{ algorithm: weighted_round_robin, retry: {{ tries: 1 }}, registration: true }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    register(&c, &gw, json!({"service_id":"a","task_types":["人数统计"],"endpoint": format!("{}/infer", a.url()), "weight": 3})).await;
    register(&c, &gw, json!({"service_id":"b","task_types":["人数统计"],"endpoint": format!("{}/infer", b.url())})).await;
    let p = pool_json(&c, &gw, "人数统计").await;
    assert_eq!(
        p["algorithm"], "weighted_round_robin",
        "the pools: entry's algorithm, not least_calls"
    );
    for _ in 0..40 {
        send(
            &c,
            Method::POST,
            &format!("http://{}/infer/{PEOPLE}", gw.proxy_addr),
            b"{}",
            &[],
        )
        .await;
    }
    assert_eq!(
        (a.stats().requests, b.stats().requests),
        (30, 10),
        "registered weight 3:1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_token_clear_all_needs_it_and_rejections_are_json() {
    let m = mock("m").await;
    let gw = gateway(&format!(
        "admin: {{ token: adm1n }}\nregistry: {{ path: \"{}\" }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    assert_eq!(
        register(&c, &gw, body("s", &m.url(), &["t"])).await.status,
        200,
        "registration stays open (no registry.token)"
    );
    let r = send(&c, Method::POST, &api(&gw, "/clear_all"), b"", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("admin token"));
    let r = send(&c, Method::DELETE, &api(&gw, "/unregister/s"), b"", &[]).await;
    assert_eq!(r.status, 401, "unregister takes either token; one is set");
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/clear_all"),
        b"",
        &[("authorization", "Bearer adm1n")],
    )
    .await;
    assert_eq!(r.json()["cleared_count"], 1);
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/register"),
        &vec![b' '; 100_000],
        &[],
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.json()["error"].is_string(), "413 is JSON too");
    let r = send(&c, Method::GET, &api(&gw, "/register"), b"", &[]).await;
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string(), "405 is JSON too");
}
