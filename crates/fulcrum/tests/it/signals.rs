//! The real binary: SIGHUP reloads (and rejects a bad file), SIGTERM drains and exits.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The gateway as a process on `file`, with its log lines on a channel.
fn spawn(file: &std::path::Path) -> (Child, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", file.to_str().unwrap(), "--threads", "1"])
        .stderr(Stdio::piped())
        // Never the test harness's own output: a child left running by
        // a failed test must not hold the suite's pipe open.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

type Log = tokio::sync::mpsc::UnboundedReceiver<String>;

/// The first log line containing `want` (within 10 s).
fn wait_log(rx: &mut Log, want: &'static str) -> String {
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
}

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
    let (mut child, mut rx) = spawn(&file);
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

/// A gateway process in front of `mock` with an SSE route, and an open
/// stream of `events` events 500 ms apart, its first event read.
async fn streaming(
    tag: &str,
    mock: &fulcrum_mock::MockServer,
    events: u32,
) -> (Child, Log, u16, tokio::io::BufReader<tokio::net::TcpStream>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("fulcrum-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{}\" }}\n\
             shutdown: {{ grace: 30s }}\naccess_log: {{ path: off }}\n\
             pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            dir.join("store").display(),
            mock.url()
        ),
    )
    .unwrap();
    let (child, mut rx) = spawn(&file);
    wait_log(&mut rx, "fulcrum is serving");
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!("GET /sse?events={events}&interval_ms=500 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut r = tokio::io::BufReader::new(s);
    let mut line = String::new();
    while !line.starts_with("data:") {
        line.clear();
        assert!(
            r.read_line(&mut line).await.unwrap() > 0,
            "stream ended early"
        );
    }
    (child, rx, admin, r)
}

/// `/readyz` of the admin listener on `port`: status and body.
async fn readyz(port: u16) -> (u16, String) {
    let r = get(&client(), &format!("http://127.0.0.1:{port}/readyz")).await;
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// The scenario: SIGTERM during a 10 s SSE stream. `/readyz`
/// turns 503 at once, the stream finishes (every event, then `[DONE]`),
/// and the process exits 0 after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_turns_readyz_503_at_once_and_lets_the_stream_finish() {
    use tokio::io::AsyncBufReadExt;
    let m = mock("sse").await;
    let (mut child, mut rx, admin, mut stream) = streaming("drain", &m, 20).await;
    assert_eq!(readyz(admin).await.0, 200);
    let t0 = std::time::Instant::now();
    kill(child.id(), "-TERM");
    let down = wait_log(&mut rx, "shutting down");
    assert!(down.contains("requests_in_flight=1"), "{down}");
    let (status, body) = readyz(admin).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "503 at once, not after the drain"
    );
    // The rest of the stream arrives, to its end.
    let mut events = 1;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        if line.starts_with("data:") {
            events += 1;
            if line.contains("[DONE]") {
                break;
            }
        }
    }
    assert_eq!(events, 21, "20 events and [DONE]");
    assert!(
        t0.elapsed() >= Duration::from_secs(8),
        "the stream ran its course"
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    wait_log(&mut rx, "stopped");
}

/// A second SIGTERM during the drain stops the process at once, saying
/// what it cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() {
    let m = mock("sse2").await;
    let (mut child, mut rx, _admin, _stream) = streaming("hard", &m, 60).await;
    kill(child.id(), "-TERM");
    wait_log(&mut rx, "shutting down");
    let t0 = std::time::Instant::now();
    kill(child.id(), "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(!status.success(), "a hard stop is not a clean exit");
    let cut = wait_log(&mut rx, "second signal");
    assert!(cut.contains("requests_cut=1"), "{cut}");
}
