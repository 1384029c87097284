//! The issue's acceptance scenario with real processes: three `fulcrum mock`
//! instances, one of them `kill -9`ed under 32 concurrent POSTs.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Starts `fulcrum mock` and returns the process and its URL.
fn spawn_mock(name: &str, listen: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["mock", "--name", name, "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fulcrum mock starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_under_32_concurrent_posts_fails_no_request() {
    let mut procs: Vec<(Child, String)> = ["a", "b", "c"]
        .iter()
        .map(|n| spawn_mock(n, "127.0.0.1:0"))
        .collect();
    let urls: Vec<String> = procs.iter().map(|(_, u)| u.clone()).collect();
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    let gw = gateway(&format!(
        "health_check: {{ interval: 100ms, timeout: 200ms, failure_threshold: 2, recovery_threshold: 2 }}\n\
         passive: {{ max_fails: 2, fail_timeout: 500ms }}\n\
         pools:\n  p:\n    algorithm: round_robin\n    retry: {{ tries: 3, non_idempotent: true }}\n    instances: [ {} ]\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n",
        inst.join(", ")
    ))
    .await;
    let url = format!("http://{}/infer", gw.proxy_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let by_b = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (url, stop, ok, failed, by_b) = (
                url.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
                by_b.clone(),
            );
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let r = post(&c, &url, br#"{"task_type":"people_count"}"#).await;
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r.instance() == "b" {
                            by_b.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(5), "traffic reaches b", || {
        by_b.load(Ordering::Relaxed) > 50
    })
    .await;

    procs[1].0.kill().unwrap(); // SIGKILL
    procs[1].0.wait().unwrap();
    eventually(Duration::from_secs(5), "b marked down", || {
        !stats(&gw, "p", &urls[1]).stats.healthy
    })
    .await;
    let (before, b_before) = (ok.load(Ordering::Relaxed), by_b.load(Ordering::Relaxed));
    eventually(
        Duration::from_secs(5),
        "traffic continues without b",
        || ok.load(Ordering::Relaxed) > before + 500,
    )
    .await;
    assert_eq!(
        by_b.load(Ordering::Relaxed),
        b_before,
        "a dead instance answered"
    );

    let port = urls[1].rsplit(':').next().unwrap().to_string();
    procs[1] = spawn_mock("b", &format!("127.0.0.1:{port}"));
    eventually(Duration::from_secs(5), "b up again", || {
        stats(&gw, "p", &urls[1]).stats.healthy
    })
    .await;
    eventually(Duration::from_secs(5), "b serves again", || {
        by_b.load(Ordering::Relaxed) > b_before + 50
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    for (mut p, _) in procs {
        let _ = p.kill();
        let _ = p.wait();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed client requests ({} ok)",
        ok.load(Ordering::Relaxed)
    );
}

/// Every acknowledged registration survives `kill -9` of the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_keeps_every_acknowledged_registration() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, admin) = (free(), free());
    let dir = scratch_dir();
    let file = format!("{dir}/fulcrum.yaml");
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{dir}/store\" }}\n"),
    )
    .unwrap();
    let start = || spawn_serving(&file);
    let mut gw = start();
    let c = client();
    let api = format!("http://127.0.0.1:{admin}/api/v1/ai_analysis");
    for i in 0..20 {
        let body = format!(
            r#"{{"service_id":"s{i}","task_types":["t"],"endpoint":"http://10.0.0.{i}:7901/infer","version":"1"}}"#
        );
        let r = send(
            &c,
            http::Method::POST,
            &format!("{api}/register"),
            body.as_bytes(),
            &[],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    gw.kill().unwrap(); // SIGKILL right after the last acknowledgement
    gw.wait().unwrap();
    let mut gw = start();
    let list = get(&client(), &format!("{api}/services")).await.json();
    assert_eq!(list["total"], 20, "{list}");
    gw.kill().unwrap();
    gw.wait().unwrap();
}
