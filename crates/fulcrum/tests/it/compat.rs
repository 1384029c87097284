//! The platform's own kind of service — a stdlib-Python program written
//! like its published example — works against Fulcrum unchanged.

use crate::common::*;
use http::Method;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const PEOPLE: &str = "%E4%BA%BA%E6%95%B0%E7%BB%9F%E8%AE%A1"; // 人数统计

fn service(gateway: &str, sid: &str, tasks: &str) -> (Child, u16) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/compat/platform_service.py"
    );
    let mut child = Command::new("python3")
        .args([script, gateway, sid, sid, tasks, "1"])
        .stdout(Stdio::piped())
        // Not the suite's own stderr: a child left running by a failed
        // test must not hold the suite's pipe open.
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("service said {line:?}"))
        .parse()
        .unwrap();
    (child, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdlib_python_platform_service_works_unchanged() {
    // With the platform's own rule (the default is `response_time`), so
    // the calls split exactly as the platform split them.
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", default_algorithm: least_calls }}\n",
        scratch_dir()
    ))
    .await;
    let admin = format!("http://{}", gw.admin_addr);
    let mut procs = [
        service(&admin, "yolo11x", "人数统计"),
        service(&admin, "yolo11x", "人数统计"),
        service(&admin, "multi", "人数统计,人员跌倒"),
    ];
    let c = client();
    let list = get(&c, &format!("{admin}/api/v1/ai_analysis/services"))
        .await
        .json();
    assert_eq!(list["total"], 3, "{list}");

    let mut by_port = std::collections::HashMap::new();
    for i in 0..300 {
        let body = format!(
            r#"{{"image_url":"http://cam/{i}.jpg","task_id":"t{i}","task_type":"人数统计","image_path":"/x","algo_config":{{}}}}"#
        );
        let r = send(
            &c,
            Method::POST,
            &format!("http://{}/infer/{PEOPLE}", gw.proxy_addr),
            body.as_bytes(),
            &[("content-type", "application/json")],
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let j = r.json();
        assert_eq!(j["success"], true);
        assert_eq!(j["result"]["total_count"], 3);
        *by_port
            .entry(j["result"]["served_by"].as_u64().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(by_port.len(), 3);
    assert!(
        by_port.values().all(|&n| n == 100),
        "least_calls spreads evenly: {by_port:?}"
    );
    // Heartbeats (every second, every other one with stats) keep them listed.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let list = get(&c, &format!("{admin}/api/v1/ai_analysis/services"))
        .await
        .json();
    let rows = list["services"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter()
            .map(|s| s["call_count"].as_u64().unwrap())
            .sum::<u64>(),
        300
    );
    // Heartbeats name the service_id: stats are kept for the service with
    // one instance ("multi"), not spread over yolo11x's two.
    for s in rows {
        let reported = s["stats"]["total_requests"].as_u64();
        if s["service_id"] == "multi" {
            assert!(
                reported.is_some_and(|n| n > 0 && n <= 100),
                "multi's own stats: {s}"
            );
        } else {
            assert!(
                reported.is_none(),
                "stats of one yolo11x process must not land on both: {s}"
            );
        }
    }
    assert!(
        rows.iter()
            .all(|s| s["heartbeat_age_s"].as_u64().unwrap() <= 2),
        "{list}"
    );
    for (p, _) in procs.iter_mut() {
        let _ = p.kill();
        let _ = p.wait();
    }
}
