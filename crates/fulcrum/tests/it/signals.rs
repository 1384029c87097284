//! The real binary: SIGHUP reloads (and rejects a bad file), SIGTERM drains and exits.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_file_keeps_the_old_one_on_errors_and_sigterm_exits() {
    let (a, b) = (mock("a").await, mock("b").await);
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("fulcrum-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f.yaml");
    let cfg = |url: &str| {
        format!(
            "listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{}\" }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{url}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            dir.join("store").display()
        )
    };
    std::fs::write(&file, cfg(&a.url())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", file.to_str().unwrap(), "--threads", "1"])
        .stderr(Stdio::piped())
        // Never the test harness's own output: a child left running by
        // a failed test must not hold the suite's pipe open.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_log = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, want: &'static str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = vec![];
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no `{want}` in log: {seen:#?}"
            );
            match rx.try_recv() {
                Ok(l) if l.contains(want) => return l,
                Ok(l) => seen.push(l),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    wait_log(&mut rx, "fulcrum is serving");
    let c = client();
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(get(&c, &url).await.instance(), "a");

    std::fs::write(&file, cfg(&b.url())).unwrap();
    kill(child.id(), "-HUP");
    wait_log(&mut rx, "configuration reloaded");
    assert_eq!(get(&c, &url).await.instance(), "b");

    std::fs::write(&file, "pools: { p: { algorithm: nope } }\n").unwrap();
    kill(child.id(), "-HUP");
    // One event, one line (control characters escaped): the rejection
    // names the bad key on its own line.
    let rejected = wait_log(&mut rx, "reload rejected");
    assert!(rejected.contains("pools.p.algorithm"), "{rejected}");
    assert_eq!(
        get(&c, &url).await.instance(),
        "b",
        "the running config stays"
    );

    kill(child.id(), "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let down = wait_log(&mut rx, "shutting down");
    assert!(
        down.contains("requests_in_flight=0") && down.contains("websockets_open=0"),
        "{down}"
    );
    wait_log(&mut rx, "stopped");
}
