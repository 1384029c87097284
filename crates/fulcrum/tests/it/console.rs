//! The video-analysis platform console's two views (issue #12, item 6):
//! `load_balance/info` and `inference_stats` in the shapes its current
//! version reads, with Fulcrum's real numbers, checked field by field.

use crate::common::*;
use http::Method;
use serde_json::{json, Value};

use crate::common::registry_api as api;

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    k.sort_unstable();
    k
}

fn rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(humantime_like)
}

/// `2026-12-02T16:04:32Z`: the shape the console parses.
fn humantime_like(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_consoles_views_have_its_shapes_and_fulcrums_numbers() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway("").await;
    let c = client();
    for (sid, m, w) in [("det-a", &a, 3), ("det-b", &b, 1)] {
        let body = json!({"service_id": sid, "name": format!("{sid} name"), "task_types": ["detect"],
            "endpoint": format!("{}/infer", m.url()), "version": "1", "weight": w, "max_concurrent": 4});
        let r = send(
            &c,
            Method::POST,
            &api(&gw, "/register"),
            body.to_string().as_bytes(),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for _ in 0..40 {
        send(
            &c,
            Method::POST,
            &format!("http://{}/infer/detect", gw.proxy_addr),
            b"{}",
            &[],
        )
        .await;
    }
    let (ca, cb) = (a.stats().requests, b.stats().requests);
    assert_eq!(ca + cb, 40, "every call reached an instance");

    // load_balance/info
    let info = get(&c, &api(&gw, "/load_balance/info")).await.json();
    assert_eq!(info["total_task_types"], 1);
    assert!(
        info["task_types"]["detect"].is_object(),
        "Fulcrum's own view stays"
    );
    let t = &info["load_balance"]["detect"];
    assert_eq!(
        keys(t),
        [
            "services",
            "task_type",
            "total_services",
            "total_weight",
            "updated_at"
        ]
    );
    assert_eq!(t["task_type"], "detect");
    assert_eq!(t["total_services"], 2);
    assert_eq!(t["total_weight"], 4);
    assert!(rfc3339(&t["updated_at"]), "{}", t["updated_at"]);
    let services = t["services"].as_array().unwrap();
    let mut ratio_sum = 0.0;
    for s in services {
        assert_eq!(
            keys(s),
            [
                "allocation_ratio",
                "avg_response_ms",
                "call_count",
                "endpoint",
                "has_data",
                "name",
                "service_id",
                "weight"
            ]
        );
        let (m, w) = if s["service_id"] == "det-a" {
            (&a, 3)
        } else {
            (&b, 1)
        };
        assert_eq!(s["endpoint"], format!("{}/infer", m.url()));
        assert_eq!(
            s["name"],
            format!("{} name", s["service_id"].as_str().unwrap())
        );
        assert_eq!(s["weight"], w);
        let calls = m.stats().requests;
        assert_eq!(s["call_count"], calls);
        assert_eq!(s["has_data"], calls > 0);
        let ratio = s["allocation_ratio"].as_f64().unwrap();
        assert!((ratio - calls as f64 * 100.0 / (ca + cb) as f64).abs() < 1e-9);
        ratio_sum += ratio;
        let avg = s["avg_response_ms"].as_f64().unwrap();
        assert!((0.0..1000.0).contains(&avg), "{avg}");
        if calls > 0 {
            assert!(avg > 0.0, "a served instance has a response time");
        }
    }
    assert!((ratio_sum - 100.0).abs() < 1e-6, "{ratio_sum}");

    // inference_stats
    let st = get(&c, &api(&gw, "/inference_stats")).await.json();
    assert_eq!(
        keys(&st),
        [
            "active_inferences",
            "avg_inference_ms",
            "drop_rate",
            "dropped_total",
            "failed_inferences",
            "failures",
            "max_concurrent_infer",
            "max_inference_ms",
            "processed_total",
            "queue_max_size",
            "queue_size",
            "queue_utilization",
            "request_rate_per_sec",
            "response_rate_per_sec",
            "success_inferences",
            "success_rate",
            "success_rate_per_sec",
            "successes",
            "total_inferences",
            "total_requests",
            "updated_at",
        ]
    );
    let tries = ca + cb;
    assert_eq!(st["total_inferences"], tries);
    assert_eq!(st["processed_total"], tries);
    // Failures are what Fulcrum counts against the instances (connect
    // errors, resets, timeouts, statuses listed in `retry.on`).
    let services = get(&c, &api(&gw, "/services")).await.json();
    let failures: u64 = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(st["failed_inferences"], failures);
    assert_eq!(st["success_inferences"], tries - failures);
    assert_eq!(st["total_requests"], st["total_inferences"]);
    assert_eq!(st["active_inferences"], 0);
    assert_eq!(st["max_concurrent_infer"], 8);
    assert_eq!(st["queue_size"], 0);
    assert_eq!(st["dropped_total"], 0);
    assert_eq!(st["drop_rate"], 0.0);
    let avg = st["avg_inference_ms"].as_f64().unwrap();
    let max = st["max_inference_ms"].as_f64().unwrap();
    assert!(avg > 0.0 && max >= avg, "{avg} {max}");
    let rps = st["response_rate_per_sec"].as_f64().unwrap();
    assert!(rps > 0.0);
    assert!(
        (st["success_rate_per_sec"].as_f64().unwrap()
            - rps * (tries - failures) as f64 / tries as f64)
            .abs()
            < 1e-6 * rps.max(1.0)
    );
    assert!(rfc3339(&st["updated_at"]));

    // reset answers the console's shape and starts the totals over
    let r = send(
        &c,
        Method::POST,
        &api(&gw, "/inference_stats/reset"),
        b"",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    let st = get(&c, &api(&gw, "/inference_stats")).await.json();
    assert_eq!(st["total_inferences"], 0);
    assert_eq!(st["processed_total"], 0);
}
