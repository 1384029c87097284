//! `fulcrum stats --watch`: the tables again every interval, into a pipe
//! one after another, until Ctrl-C.

use crate::common::*;
use std::process::Command;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The next round of `--watch` in a pipe: its header line, then every
/// line up to the blank one that ends it.
async fn next_frame(out: &mut UnboundedReceiver<String>) -> Vec<String> {
    let mut frame = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), out.recv())
            .await
            .unwrap_or_else(|_| panic!("no whole frame within 10 s: {frame:#?}"))
            .unwrap_or_else(|| panic!("stdout closed: {frame:#?}"));
        if line.is_empty() {
            if !frame.is_empty() {
                return frame;
            }
        } else {
            frame.push(line);
        }
    }
}

fn watch(admin: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .args(["stats", "--watch", "200ms", "--admin", admin]),
    )
}

/// Ctrl-C ends the watch with exit code 0.
async fn interrupt(mut child: ChildGuard) {
    kill(child.0.id(), "-INT");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.0.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running after Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_come_again_with_the_new_counts_until_ctrl_c() {
    let a = mock("a").await;
    let gw = gateway_to(&a).await;
    let c = client();
    let proxy = format!("http://{}/", gw.proxy_addr);
    for _ in 0..2 {
        assert_eq!(get(&c, &proxy).await.status, 200);
    }
    let admin = format!("http://{}", gw.admin_addr);
    let mut child = watch(&admin);
    let mut out = child.lines();
    // `ENDPOINT STATE WEIGHT INFL REQS …`: REQS of `a`, as `recent/since start`.
    let reqs = |frame: &[String]| -> Option<String> {
        frame
            .iter()
            .find(|l| l.starts_with(&a.url()))
            .and_then(|l| l.split_whitespace().nth(4))
            .map(str::to_string)
    };
    for _ in 0..2 {
        let frame = next_frame(&mut out).await;
        assert!(
            frame[0].starts_with(&format!("fulcrum stats {admin} at ")),
            "{frame:#?}"
        );
        assert!(
            frame[0].ends_with("UTC, every 200ms (Ctrl-C stops)"),
            "{frame:#?}"
        );
        assert!(
            frame.iter().all(|l| !l.contains('\x1b')),
            "no escapes into a pipe"
        );
        assert_eq!(reqs(&frame).as_deref(), Some("2/2"), "{frame:#?}");
    }
    for _ in 0..3 {
        assert_eq!(get(&c, &proxy).await.status, 200);
    }
    // The next rounds show the new counts.
    let mut frames = 0;
    loop {
        let frame = next_frame(&mut out).await;
        frames += 1;
        match reqs(&frame).as_deref() {
            Some("5/5") => break,
            Some("2/2") if frames < 20 => continue,
            other => panic!("REQS {other:?} after {frames} more rounds: {frame:#?}"),
        }
    }
    interrupt(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_shown_in_place_and_tried_again() {
    let mut child = watch("http://127.0.0.1:1");
    let mut out = child.lines();
    for _ in 0..2 {
        let frame = next_frame(&mut out).await;
        assert!(
            frame
                .iter()
                .any(|l| l.contains("cannot reach the admin API")),
            "{frame:#?}"
        );
        assert!(
            frame.iter().any(|l| l.contains("trying again every 200ms")),
            "{frame:#?}"
        );
    }
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "it gave up"
    );
    interrupt(child).await;
}
