//! The access log (issue #12 item 3, docs/ACCESS_LOG.md): exactly one line
//! per request — answered, refused, failed upstream, left mid-stream by
//! its caller, or a WebSocket — parseable in both formats; a destination
//! nobody reads slows no request and its drops are counted; `SIGUSR1`
//! reopens the file for logrotate.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// One access line, from either format.
#[derive(Debug, Clone)]
struct Line {
    method: String,
    path: String,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    referer: Option<String>,
    user_agent: Option<String>,
    rt: f64,
    uct: Option<f64>,
    uht: Option<f64>,
    urt: Option<f64>,
    pool: Option<String>,
    instance: Option<String>,
    tries: u64,
    cache: Option<String>,
    blame: Option<String>,
    outcome: String,
    rid: String,
}

fn dash(v: &str) -> Option<String> {
    (v != "-").then(|| v.to_string())
}

/// `CLIENT - - [TIME] "REQUEST" STATUS BYTES "REFERER" "UA" key=value…`
fn parse_text(l: &str) -> Line {
    let q: Vec<&str> = l.split('"').collect();
    assert_eq!(q.len(), 7, "three quoted fields: {l}");
    assert!(
        q[0].starts_with("127.0.0.1 - - [") && q[0].ends_with(" +0000] "),
        "{l}"
    );
    let mut req = q[1].split(' ');
    let (method, path, proto) = (
        req.next().unwrap(),
        req.next().unwrap(),
        req.next().unwrap(),
    );
    assert!(proto.starts_with("HTTP/"), "{l}");
    let mid: Vec<&str> = q[2].split_whitespace().collect();
    let kv: HashMap<&str, &str> = q[6]
        .split_whitespace()
        .map(|t| {
            t.split_once('=')
                .unwrap_or_else(|| panic!("key=value: {t} in {l}"))
        })
        .collect();
    let secs = |k: &str| dash(kv[k]).map(|v| v.parse::<f64>().unwrap());
    Line {
        method: method.into(),
        path: path.into(),
        status: mid[0].parse().unwrap(),
        bytes_out: mid[1].parse().unwrap(),
        referer: dash(q[3]),
        user_agent: dash(q[5]),
        bytes_in: kv["in"].parse().unwrap(),
        rt: secs("rt").unwrap(),
        uct: secs("uct"),
        uht: secs("uht"),
        urt: secs("urt"),
        pool: dash(kv["pool"]),
        instance: dash(kv["instance"]),
        tries: kv["tries"].parse().unwrap(),
        cache: dash(kv["cache"]),
        blame: dash(kv["blame"]),
        outcome: kv["outcome"].into(),
        rid: kv["rid"].into(),
    }
}

fn parse_json(l: &str) -> Line {
    let j: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    let s = |k: &str| j[k].as_str().map(str::to_string);
    let f = |k: &str| j[k].as_f64();
    let n = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
    assert_eq!(j["client"], "127.0.0.1", "{l}");
    assert!(s("time").unwrap().ends_with('Z'), "{l}");
    Line {
        method: s("method").unwrap(),
        path: s("path").unwrap(),
        status: n("status") as u16,
        bytes_in: n("bytes_in"),
        bytes_out: n("bytes_out"),
        referer: s("referer"),
        user_agent: s("user_agent"),
        rt: f("request_time").unwrap(),
        uct: f("upstream_connect_time"),
        uht: f("upstream_header_time"),
        urt: f("upstream_response_time"),
        pool: s("pool"),
        instance: s("instance"),
        tries: n("tries"),
        cache: s("cache"),
        blame: s("blame"),
        outcome: s("outcome").unwrap(),
        rid: s("request_id").unwrap(),
    }
}

/// Waits until `n` lines were written, checks that no more come, and
/// returns the file's lines parsed.
async fn lines(
    gw: &fulcrum::app::Running,
    file: &std::path::Path,
    n: u64,
    json: bool,
) -> Vec<Line> {
    let log = gw.access_log.as_ref().expect("access log on");
    eventually(Duration::from_secs(10), "every line written", || {
        log.written() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (log.written(), log.dropped()),
        (n, 0),
        "exactly one line per request"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let parse = if json { parse_json } else { parse_text };
    text.lines().map(parse).collect()
}

fn rid(h: &http::HeaderMap) -> String {
    h["x-request-id"].to_str().unwrap().to_string()
}

/// The upstream timings fit inside the total and in each other: connect
/// ≤ response head ≤ response end ≤ total.
fn consistent(l: &Line) {
    let mut prev = 0.0;
    for t in [l.uct, l.uht, l.urt].into_iter().flatten() {
        assert!(prev <= t && t <= l.rt, "timings out of order: {l:?}");
        prev = t;
    }
}

async fn one_line_per_request(json: bool) {
    let a = mock_with(MockConfig {
        name: "a".into(),
        latency: Latency::Fixed(Duration::from_millis(30)),
        ..MockConfig::default()
    })
    .await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = scratch_dir();
    let file = std::path::Path::new(&dir).join("access.log");
    let format = if json { "json" } else { "text" };
    let gw = gateway(&format!(
        "limits: {{ max_body: 1KiB }}\naccess_log: {{ path: \"{}\", format: {format} }}\npools:\n  p: {{ instances: [ {{ endpoint: \"{}\" }} ] }}\n  d: {{ retry: {{ tries: 1 }}, instances: [ {{ endpoint: \"{dead}\" }} ] }}\nroutes: [ {{ path_prefix: /api/, pool: p, strip_prefix: true }}, {{ path_prefix: /dead/, pool: d }} ]\n",
        file.display(),
        a.url()
    ))
    .await;
    let (c, base) = (client(), format!("http://{}", gw.proxy_addr));
    let mut want: HashMap<String, &str> = HashMap::new();

    // 502 first, before any probe can mark the dead instance down.
    let r = get(&c, &format!("{base}/dead/x")).await;
    assert_eq!(r.status, 502);
    want.insert(rid(&r.headers), "502");
    let bytes_502 = r.body.len() as u64;

    let t0 = Instant::now();
    let r = send(
        &c,
        Method::POST,
        &format!("{base}/api/x"),
        b"hello",
        &[("user-agent", "it-agent/1"), ("referer", "http://ref/")],
    )
    .await;
    let client_took = t0.elapsed().as_secs_f64();
    assert_eq!(r.status, 200);
    want.insert(rid(&r.headers), "200");
    let bytes_200 = r.body.len() as u64;

    let r = get(&c, &format!("{base}/nowhere")).await;
    assert_eq!(r.status, 404);
    want.insert(rid(&r.headers), "404");

    let r = send(
        &c,
        Method::POST,
        &format!("{base}/api/x"),
        &[b'x'; 4096],
        &[],
    )
    .await;
    assert_eq!(r.status, 413);
    want.insert(rid(&r.headers), "413");

    // A caller that leaves mid-stream.
    let resp = c
        .get(
            format!("{base}/api/sse?events=100&interval_ms=20")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    want.insert(rid(resp.headers()), "dropped");
    let mut body = resp.into_body();
    assert!(body.frame().await.unwrap().unwrap().is_data());
    drop(body);

    // A WebSocket: one line when it closes.
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", gw.proxy_addr))
        .await
        .expect("handshake through fulcrum");
    assert_eq!(resp.status(), 101);
    want.insert(rid(resp.headers()), "101");
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("hello".into())
    );
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}

    let got = lines(&gw, &file, 6, json).await;
    assert_eq!(got.len(), 6, "{got:#?}");
    let mut by_rid: HashMap<String, Line> = HashMap::new();
    for l in got {
        consistent(&l);
        assert!(
            by_rid.insert(l.rid.clone(), l).is_none(),
            "one line per request id"
        );
    }
    let line = |what: &str| {
        let id = want.iter().find(|(_, w)| **w == what).unwrap().0;
        by_rid
            .get(id)
            .unwrap_or_else(|| panic!("no line with the request id of the {what}: {by_rid:#?}"))
            .clone()
    };

    let ok = line("200");
    assert_eq!(
        (ok.method.as_str(), ok.path.as_str(), ok.status),
        ("POST", "/api/x", 200)
    );
    assert_eq!((ok.bytes_in, ok.bytes_out), (5, bytes_200));
    assert_eq!(ok.user_agent.as_deref(), Some("it-agent/1"));
    assert_eq!(ok.referer.as_deref(), Some("http://ref/"));
    assert_eq!(
        (ok.pool.as_deref(), ok.instance.as_deref()),
        (Some("p"), Some(a.url().as_str()))
    );
    assert_eq!(
        (
            ok.tries,
            ok.outcome.as_str(),
            ok.blame.as_deref(),
            ok.cache.as_deref()
        ),
        (1, "complete", None, None)
    );
    // The mock takes 30 ms: the instance's share of the total, which the
    // caller measured from outside.
    let (uht, urt) = (ok.uht.unwrap(), ok.urt.unwrap());
    assert!(uht >= 0.030, "{ok:?}");
    assert!(ok.rt <= client_took + 0.001, "{ok:?} vs {client_took}");
    assert!(
        ok.rt - urt < 0.1,
        "the gateway's own share stays small: {ok:?}"
    );
    assert!(ok.uct.is_some(), "{ok:?}");

    let bad = line("502");
    assert_eq!((bad.status, bad.tries, bad.bytes_out), (502, 1, bytes_502));
    assert_eq!(
        (bad.pool.as_deref(), bad.instance.as_deref()),
        (Some("d"), Some(dead.as_str()))
    );
    assert_eq!(bad.blame.as_deref(), Some("upstream"));
    assert_eq!(
        (bad.uct, bad.uht, bad.urt),
        (None, None, None),
        "no connection was made"
    );

    let none = line("404");
    assert_eq!(
        (
            none.status,
            none.tries,
            none.pool.is_none(),
            none.instance.is_none()
        ),
        (404, 0, true, true)
    );
    assert_eq!(none.blame.as_deref(), Some("downstream"));
    assert!(none.bytes_out > 0, "the gateway's JSON answer: {none:?}");

    let big = line("413");
    assert_eq!(
        (big.status, big.bytes_in, big.blame.as_deref()),
        (413, 0, Some("downstream"))
    );

    let left = line("dropped");
    assert_eq!((left.status, left.outcome.as_str()), (200, "dropped"));
    assert!(left.bytes_out > 0, "the first event went out: {left:?}");

    let ws = line("101");
    assert_eq!(
        (ws.status, ws.outcome.as_str(), ws.path.as_str()),
        (101, "complete", "/api/ws")
    );
    // "hello" masked from the caller (11 bytes) and echoed (7), and the
    // close frames, each way.
    assert!(ws.bytes_in >= 11 && ws.bytes_out >= 7, "{ws:?}");
    assert!(ws.urt.unwrap() >= ws.uht.unwrap(), "{ws:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_text_has_one_line_per_request_of_every_kind() {
    one_line_per_request(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_json_has_one_line_per_request_of_every_kind() {
    one_line_per_request(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_to_a_pipe_nobody_reads_slows_no_request_and_counts_its_drops() {
    use std::os::fd::AsRawFd;
    let a = mock("a").await;
    // A pipe this test does not read until the end: once its buffer
    // (64 KiB on Linux) is full, the writer thread is stuck in `write`.
    let (reader, writer) = std::io::pipe().unwrap();
    let gw = gateway(&format!(
        "access_log: {{ path: /proc/self/fd/{}, buffer: 16 }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        writer.as_raw_fd(),
        a.url()
    ))
    .await;
    drop(writer);
    const N: u64 = 1500;
    const TASKS: u64 = 10;
    let url = format!("http://{}/fast", gw.proxy_addr);
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let c = client();
                    for _ in 0..N / TASKS {
                        assert_eq!(get(&c, &url).await.status, 200);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    assert!(all.is_ok(), "requests were held up by the access log");
    let log = gw.access_log.clone().unwrap();
    // ~250-byte lines: at most a few hundred fit in the pipe, 16 in the queue.
    let dropped = log.dropped();
    assert!(dropped > 0 && dropped < N, "dropped {dropped} of {N}");
    assert!(log.written() < N - dropped, "the writer is blocked");
    // The drops are counted where an operator looks: /metrics.
    let m = get(&client(), &format!("http://{}/metrics", gw.admin_addr)).await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    let shown: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("fulcrum_access_log_dropped_total "))
        .and_then(|v| v.parse().ok())
        .expect("fulcrum_access_log_dropped_total in /metrics");
    // (monotonic: between the two reads around the scrape)
    assert!(
        (dropped..=log.dropped()).contains(&shown),
        "/metrics shows {shown} dropped, the log {dropped}"
    );
    // Read now: every line that was not dropped arrives, and is a line.
    let expect = N - dropped;
    let read = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for l in BufReader::new(reader).lines() {
            parse_text(&l.unwrap());
            n += 1;
            if n == expect {
                break;
            }
        }
        n
    });
    let n = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("lines arrive")
        .unwrap();
    assert_eq!(n, expect);
    assert_eq!(log.dropped(), dropped, "nothing dropped after the requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_access_log_at_its_path_after_a_rename() {
    let a = mock("a").await;
    let (port, admin) = (free_port(), free_port());
    let dir = std::path::PathBuf::from(scratch_dir());
    let (file, rotated) = (dir.join("access.log"), dir.join("access.log.1"));
    let cfg = dir.join("f.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{}\" }}\naccess_log: {{ path: access.log }}\npools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            dir.join("store").display(),
            a.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", cfg.to_str().unwrap(), "--threads", "1"])
        .stderr(Stdio::piped())
        // Never the test harness's own output.
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_log = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(want) => return,
                Ok(_) => {}
                Err(_) => panic!("no `{want}` in the log"),
            }
        }
    };
    let count = |p: &std::path::Path| std::fs::read_to_string(p).map_or(0, |s| s.lines().count());
    let wait_lines = |p: &std::path::Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(p) < n {
            assert!(
                Instant::now() < deadline,
                "{} has {} lines, not {n}",
                p.display(),
                count(p)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_log("fulcrum is serving");
    let (c, url) = (client(), format!("http://127.0.0.1:{port}/x"));
    assert_eq!(get(&c, &url).await.status, 200);
    wait_lines(&file, 1);
    // logrotate moves the file; the gateway writes on into it until told.
    std::fs::rename(&file, &rotated).unwrap();
    assert_eq!(get(&c, &url).await.status, 200);
    wait_lines(&rotated, 2);
    assert!(Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    wait_log("access log reopened");
    assert_eq!(get(&c, &url).await.status, 200);
    wait_lines(&file, 1);
    assert_eq!((count(&rotated), count(&file)), (2, 1));
    // The last request's line is written before the process exits.
    assert_eq!(get(&c, &url).await.status, 200);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    assert_eq!((count(&rotated), count(&file)), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_the_access_log_says_it_needs_a_restart() {
    let a = mock("a").await;
    let dir = scratch_dir();
    let file = std::path::Path::new(&dir).join("access.log");
    let body = format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url()
    );
    let on = format!("access_log: {{ path: \"{}\" }}\n{body}", file.display());
    let gw = gateway(&on).await;
    let parse = |yaml: &str| {
        let full = format!(
            "{}{yaml}",
            test_header().replace("access_log: { path: off }\n", "")
        );
        fulcrum_config::parse(&full, &|_| None).unwrap()
    };
    let has = |r: &fulcrum_control::reload::ReloadReport| {
        r.restart_needed.iter().any(|s| s == "access_log")
    };
    assert!(!has(&gw.reload(parse(&on)).unwrap()));
    let fixed = gw
        .reload(parse(&format!("access_log: {{ path: off }}\n{body}")))
        .unwrap();
    assert!(has(&fixed), "{fixed:?}");
    // Still logging as started.
    assert_eq!(
        get(&client(), &format!("http://{}/x", gw.proxy_addr))
            .await
            .status,
        200
    );
    let got = lines(&gw, &file, 1, false).await;
    assert_eq!(got[0].status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_shows_the_cache_status_and_the_bytes_of_a_hit() {
    let a = mock("a").await;
    let dir = scratch_dir();
    let file = std::path::Path::new(&dir).join("access.log");
    let gw = gateway(&format!(
        "access_log: {{ path: \"{}\" }}\npools:\n  tts: {{ cache: {{ ttl: 1h, max_size: 1MiB, methods: [POST] }}, instances: [ {{ endpoint: \"{}\" }} ] }}\nroutes: [ {{ path_prefix: /tts, pool: tts }} ]\n",
        file.display(),
        a.url()
    ))
    .await;
    let (c, url) = (client(), format!("http://{}/tts", gw.proxy_addr));
    let miss = post(&c, &url, b"say hi").await;
    assert_eq!(miss.headers["x-cache"], "MISS");
    let hit = post(&c, &url, b"say hi").await;
    assert_eq!(hit.headers["x-cache"], "HIT");
    // GET is not among the pool's cached methods.
    let bypass = get(&c, &url).await;
    assert_eq!(bypass.status, 200);
    let got = lines(&gw, &file, 3, false).await;
    let of = |r: &Resp| {
        got.iter()
            .find(|l| l.rid == rid(&r.headers))
            .unwrap()
            .clone()
    };
    let (m, h, b) = (of(&miss), of(&hit), of(&bypass));
    assert_eq!(
        (m.cache.as_deref(), m.tries, m.bytes_in),
        (Some("MISS"), 1, 6)
    );
    assert_eq!(
        (h.cache.as_deref(), h.tries, h.bytes_in),
        (Some("HIT"), 0, 6)
    );
    assert_eq!(h.bytes_out, hit.body.len() as u64);
    assert_eq!((h.uct, h.uht, h.urt, h.instance), (None, None, None, None));
    assert_eq!(b.cache.as_deref(), Some("BYPASS"));
}
