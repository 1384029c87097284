//! The log cannot be forged (issue #11, finding 9): a value with a newline
//! stays inside its own line in the running binary's log.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_id_with_a_newline_cannot_write_a_log_line() {
    let (port, admin) = (free_port(), free_port());
    let dir = scratch_dir();
    let file = format!("{dir}/fulcrum.yaml");
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{dir}/store\" }}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", &file, "--threads", "1"])
        .stderr(Stdio::piped())
        // Never the test harness's own output: a child left running by
        // a failed test must not hold the suite's pipe open.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = vec![];
    while !lines
        .iter()
        .any(|l: &String| l.contains("fulcrum is serving"))
    {
        lines.push(rx.recv().expect("gateway exited before serving"));
    }
    let body = serde_json::json!({
        "service_id": "yolo\n2026-12-02T00:00:00.000000Z ERROR forged: admin token leaked",
        "task_types": ["t"],
        "endpoint": "http://10.0.0.7:7901/infer",
    });
    let r = send(
        &client(),
        http::Method::POST,
        &format!("http://127.0.0.1:{admin}/api/v1/ai_analysis/register"),
        body.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The registration's own log line, then nothing more is needed.
    while !lines.iter().any(|l| l.contains("instance registered")) {
        lines.push(
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .expect("the registration is logged"),
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let forged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ERROR forged"))
        .collect();
    assert_eq!(forged.len(), 1, "{lines:#?}");
    assert!(
        forged[0].contains("instance registered") && !forged[0].starts_with("2026-12-02T00:00:00"),
        "the forged text must stay inside the registration's line: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_start_up_says_what_runs() {
    let (port, admin) = (free_port(), free_port());
    let dir = scratch_dir();
    let file = format!("{dir}/fulcrum.yaml");
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ enabled: false }}\nlog: {{ format: text }}\npools: {{ p: {{ instances: [ {{ endpoint: \"http://127.0.0.1:1\" }}, {{ endpoint: \"http://127.0.0.1:2\" }} ] }} }}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args([
            "serve",
            "-c",
            &file,
            "--threads",
            "1",
            "--log-format",
            "json",
        ])
        .stderr(Stdio::piped())
        // Never the test harness's own output: a child left running by
        // a failed test must not hold the suite's pipe open.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = vec![];
    for line in err.lines().map_while(Result::ok) {
        let done = line.contains("fulcrum is serving");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let start = events
        .iter()
        .find(|e| e["message"] == "starting fulcrum")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["config"], file.as_str());
    assert_eq!(
        (start["pools"].as_u64(), start["instances"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(events.iter().any(|e| e["message"] == "fulcrum is serving"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_in_the_config_file_is_honoured() {
    let (port, admin) = (free_port(), free_port());
    let dir = scratch_dir();
    let file = format!("{dir}/fulcrum.yaml");
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ enabled: false }}\nlog: {{ format: json }}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", &file, "--threads", "1"])
        .env_remove("FULCRUM_LOG_FORMAT")
        .stderr(Stdio::piped())
        // Never the test harness's own output: a child left running by
        // a failed test must not hold the suite's pipe open.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let e: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(e["message"], "starting fulcrum", "{first}");
}
