//! The `fulcrum-mock` binary: startup line, flags, admin control, SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{get, post_json};

const BIN: &str = env!("CARGO_BIN_EXE_fulcrum-mock");

#[test]
fn help_lists_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--latency-max",
        "--lognormal-sigma",
        "--capacity",
        "--mode",
        "--unhealthy",
        "--threads",
        "--seed",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let bad = Command::new(BIN)
        .args(["--mode", "sideways"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let mut child = Command::new(BIN)
        .args([
            "--name",
            "bin",
            "--unhealthy",
            "--latency",
            "1ms",
            "--capacity",
            "4",
        ])
        .stdout(Stdio::piped())
        // Not the suite's own stderr: a child left running by a failed
        // test must not hold the suite's pipe open.
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .expect(&line);
    let addr: SocketAddr = url.parse().unwrap();
    assert!(addr.ip().is_loopback());

    let reply = get(addr, "/fast").await;
    assert_eq!(
        (reply.status, reply.header("x-mock-instance")),
        (200, "bin")
    );
    assert_eq!(get(addr, "/health").await.status, 503);
    assert_eq!(
        post_json(addr, "/__mock/control", r#"{"healthy":true}"#)
            .await
            .status,
        200
    );
    assert_eq!(get(addr, "/health").await.status, 200);

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}
