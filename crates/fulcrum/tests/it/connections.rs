//! Peers that hold the gateway's connections without using them are timed
//! out (issue #11, findings 3–5): a connection that never sends a byte, an
//! idle keep-alive connection, a caller that stops reading a streamed
//! answer, stalled admin connections; a burst of connects fits in the listen
//! backlog, and accept errors are logged at most once a second.
//!
//! These run real sockets on the wall clock (paused time cannot drive the
//! kernel's buffers); the exact timing of each deadline is tested on paused
//! time over in-memory pipes in `dataplane/src/server/watchdog.rs`.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn one(url: &str, extra: &str) -> String {
    format!(
        "pools:\n  p:\n{extra}    instances: [ {{ endpoint: \"{url}\" }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n"
    )
}

/// Reads until the peer closes (or resets) the connection: how long that
/// took, or `None` if it is still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut buf))
        .await
        .ok()
        .map(|_| t.elapsed())
}

/// Reads one HTTP/1.1 response with a `Content-Length` from `s`: its head.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "closed inside a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ client_header: 500ms }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    for (what, addr) in [("proxy", gw.proxy_addr), ("admin", gw.admin_addr)] {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let closed = closed_within(&mut s, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "{what}: a silent connection was never closed"
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(490) && took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_connects_at_max_connections_lock_callers_out_for_at_most_the_header_timeout() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ client_header: 1s }}\nlimits: {{ max_connections: 100 }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    let mut bare = Vec::new();
    for _ in 0..100 {
        bare.push(TcpStream::connect(gw.proxy_addr).await.unwrap());
    }
    let t = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(6),
        get(&client(), &format!("http://{}/", gw.proxy_addr)),
    )
    .await
    .expect("a caller was locked out by 100 connections that never sent a byte");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_has_its_own_timeout() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ client_header: 300ms, keepalive: 1500ms }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    let req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

    // Idle after an answer: open for `keepalive`, not `client_header`.
    let mut s = TcpStream::connect(gw.proxy_addr).await.unwrap();
    s.write_all(req).await.unwrap();
    let head = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let took = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection was never closed");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(3),
        "closed {took:?} after the answer"
    );

    // A second request may be started after a pause, and its head is due
    // `client_header` after its first byte.
    let mut s = TcpStream::connect(gw.proxy_addr).await.unwrap();
    s.write_all(req).await.unwrap();
    read_response(&mut s).await;
    s.write_all(b"GET / HT").await.unwrap();
    let took = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("a half-sent head was never cut off");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1200),
        "a half-sent second head was cut off after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_fits_in_the_listen_backlog() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ client_header: 30s }}\nlimits: {{ max_connections: 1 }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    // One caller holds the only connection slot (it has been served, so
    // it is surely accepted), so the gateway accepts nothing more: every
    // other connect waits in the kernel's accept queue, the backlog.
    let mut held = TcpStream::connect(gw.proxy_addr).await.unwrap();
    held.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut held).await;
    let burst: Vec<_> = (0..600)
        .map(|_| {
            let addr = gw.proxy_addr;
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(800), TcpStream::connect(addr))
                    .await
                    .ok()
                    .and_then(Result::ok)
            })
        })
        .collect();
    let mut connected = Vec::new();
    for b in burst {
        if let Some(s) = b.await.unwrap() {
            connected.push(s);
        }
    }
    assert_eq!(
        connected.len(),
        600,
        "only {} of 600 connects completed within 800 ms",
        connected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_stop_reading_release_their_instance_slot_after_the_idle_timeout() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ idle: 1s }}\npools:\n  p:\n    queue: {{ max: 0 }}\n    instances: [ {{ endpoint: \"{}\", max_concurrent: 2 }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url()
    ))
    .await;
    let endpoint = a.url();
    let in_flight = || stats(&gw, "p", &endpoint).stats.in_flight;
    // Two callers ask for a long, fast stream and never read a byte (with
    // a small receive buffer, so the stream backs up at once).
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(gw.proxy_addr).await.unwrap();
        s.write_all(b"GET /sse?events=1000000&interval_ms=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    eventually(Duration::from_secs(5), "both slots taken", || {
        in_flight() == 2
    })
    .await;
    assert_eq!(
        get(&client(), &format!("http://{}/busy", gw.proxy_addr))
            .await
            .status,
        503,
        "both slots should be held while the callers stall"
    );
    let t = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the stalled callers' slots are released",
        || in_flight() == 0,
    )
    .await;
    let took = t.elapsed();
    assert!(took < Duration::from_secs(6), "released after {took:?}");
    for mut s in stalled {
        // Their connections are closed too (what was already sent may
        // still be read first).
        assert!(
            closed_within(&mut s, Duration::from_secs(5))
                .await
                .is_some(),
            "a stalled caller's connection stayed open"
        );
    }
    let r = get(&client(), &format!("http://{}/sse?events=3", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    // The caller stalled, not the instance: nothing counted against it.
    let s = stats(&gw, "p", &endpoint).stats;
    assert_eq!(s.failures, 0, "{s:?}");
    assert!(!s.ejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_must_arrive_within_the_header_timeout() {
    let gw = gateway("timeouts: { client_header: 500ms }\n").await;
    // A head that never ends.
    let mut s = TcpStream::connect(gw.admin_addr).await.unwrap();
    s.write_all(b"GET /api/v1/pools HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let took = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("a half-sent admin head was never cut off");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A body that never ends: the request is refused and the connection closed.
    let mut s = TcpStream::connect(gw.admin_addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/ai_analysis/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"service",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(done.is_ok(), "a half-sent admin body was never cut off");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let text = String::from_utf8_lossy(&out);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
}

/// Starts the real binary under `ulimit -n {fds}` with `yaml` (listeners
/// filled in); its stderr goes to the returned file.
async fn process(fds: u32, yaml: &str) -> (ChildGuard, u16, u16, std::path::PathBuf) {
    let (port, admin) = (free_port(), free_port());
    let dir = std::path::PathBuf::from(scratch_dir());
    let file = dir.join("f.yaml");
    let log = dir.join("stderr.log");
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin}{yaml}"),
    )
    .unwrap();
    let child = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {fds} && exec '{}' serve -c '{}' --threads 1 2>'{}'",
                env!("CARGO_BIN_EXE_fulcrum"),
                file.display(),
                log.display()
            ))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = client();
    let pools = format!("http://127.0.0.1:{admin}/api/v1/pools");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::time::timeout(
        Duration::from_secs(1),
        c.request(http::Request::get(&pools).body(Default::default()).unwrap()),
    )
    .await
    .map_or(true, |r| r.is_err())
    {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port, admin, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_admin_connections_leave_descriptors_for_the_proxy() {
    let m = mock("m").await;
    let (_child, port, admin, _log) = process(
        64,
        &format!(
            ", max_connections: 8 }}\nregistry: {{ enabled: false }}\ntimeouts: {{ client_header: 20s }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            m.url()
        ),
    )
    .await;
    // 200 admin connections that send half a head and stall: more than the
    // process has descriptors.
    let mut stalled = Vec::new();
    for _ in 0..200 {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(("127.0.0.1", admin)),
        )
        .await
        {
            let _ = s.write_all(b"GET /api/v1/pools HTTP/1.1\r\n").await;
            stalled.push(s);
        }
    }
    // The proxy still serves, at once.
    let c = client();
    for i in 0..10 {
        let r = tokio::time::timeout(
            Duration::from_secs(3),
            get(&c, &format!("http://127.0.0.1:{port}/r{i}")),
        )
        .await
        .unwrap_or_else(|_| panic!("proxy request {i} timed out behind stalled admin connections"));
        assert_eq!(r.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_are_logged_at_most_once_a_second() {
    let m = mock("m").await;
    let (child, port, _admin, log) = process(
        48,
        &format!(
            " }}\nregistry: {{ enabled: false }}\ntimeouts: {{ client_header: 20s }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            m.url()
        ),
    )
    .await;
    // More silent connections than the process has descriptors: accepting
    // fails with "Too many open files" until they time out.
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    drop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("accept failed"))
        .collect();
    assert!(!lines.is_empty(), "no accept error was logged:\n{text}");
    assert!(
        lines.len() <= 5,
        "{} accept errors logged in 3 s:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("suppressed")),
        "no count of suppressed errors:\n{}",
        lines.join("\n")
    );
}
