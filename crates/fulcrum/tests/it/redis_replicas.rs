//! `registry.store: redis` with real processes: a `redis-server` of our
//! own on a free loopback port and three `fulcrum serve` replicas sharing
//! it, in front of in-process mock instances.
//!
//! The tests need `redis-server` (Debian's `redis-server` package, which
//! `scripts/test` installs and then sets `FULCRUM_REQUIRE_REDIS=1`).
//! Without it they say so and pass, unless `FULCRUM_REQUIRE_REDIS` is set.

use crate::common::*;
use fulcrum_mock::MockServer;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `redis-server` on a loopback port, without persistence; killed when
/// dropped.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one, or `None` (after saying why) when `redis-server` is not
    /// installed and `FULCRUM_REQUIRE_REDIS` is not set.
    fn start() -> Option<Redis> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("FULCRUM_REQUIRE_REDIS").is_none(),
                "redis-server is not installed and FULCRUM_REQUIRE_REDIS is set"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        Some(r)
    }

    /// Starts it (again) on its port, empty.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command; its first answer line (`None` when Redis is not there).
    fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req += &format!("${}\r\n{a}\r\n", a.len());
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        text.lines().next().map(str::to_string)
    }

    /// How many registrations Redis holds.
    fn registrations(&self) -> usize {
        // `*N` is the length of the KEYS answer.
        self.command(&["KEYS", "fulcrum:reg:*"])
            .and_then(|l| l.strip_prefix('*').and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `fulcrum serve` replica; killed when dropped.
struct Replica {
    child: Child,
    proxy: String,
    admin: String,
}

impl Replica {
    fn start(redis: &Redis, heartbeat_timeout: &str) -> Replica {
        let (port, admin) = (free_port(), free_port());
        let dir = scratch_dir();
        let file = format!("{dir}/fulcrum.yaml");
        std::fs::write(
            &file,
            format!(
                "listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\n\
                 access_log: {{ path: off }}\n\
                 health_check: {{ interval: 200ms, timeout: 200ms }}\n\
                 registry:\n  store: redis\n  redis_url: \"{}\"\n  path: \"{dir}/store\"\n  \
                 heartbeat_timeout: {heartbeat_timeout}\n  default_algorithm: least_calls\n",
                redis.url()
            ),
        )
        .unwrap();
        Replica {
            child: spawn_serving(&file),
            proxy: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin}"),
        }
    }

    fn infer(&self) -> String {
        format!("{}/infer/t", self.proxy)
    }

    async fn register(&self, c: &TestClient, name: &str, m: &MockServer) {
        let body = serde_json::json!({
            "service_id": name, "name": name, "task_types": ["t"],
            "endpoint": m.url(), "version": "1",
        });
        let r = send(
            c,
            http::Method::POST,
            &format!("{}/api/v1/ai_analysis/register", self.admin),
            body.to_string().as_bytes(),
            &[("content-type", "application/json")],
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    async fn heartbeat(&self, c: &TestClient, name: &str) -> http::StatusCode {
        send(
            c,
            http::Method::POST,
            &format!("{}/api/v1/ai_analysis/heartbeat/{name}", self.admin),
            b"",
            &[],
        )
        .await
        .status
    }

    /// Which mock answered one `POST /infer/t` ("" when none did).
    async fn answered_by(&self, c: &TestClient) -> String {
        let r = post(c, &self.infer(), br#"{"image_url":"x"}"#).await;
        if r.status == 200 {
            r.instance()
        } else {
            String::new()
        }
    }

    async fn metric(&self, c: &TestClient, name: &str) -> Option<f64> {
        let text = get(c, &format!("{}/metrics", self.admin)).await.body;
        String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until it returns true; how long that took.
async fn time_until<F, Fut>(within: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !probe().await {
        assert!(start.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// Waits until every replica of `r` has routed to each of `names`.
async fn all_route_to(r: &[Replica], c: &TestClient, names: &[&str], within: Duration) {
    for x in r {
        for m in names {
            time_until(within, "every replica routes to each instance", || async {
                x.answered_by(c).await == *m
            })
            .await;
        }
    }
}

fn three(redis: &Redis, heartbeat_timeout: &str) -> Vec<Replica> {
    (0..3)
        .map(|_| Replica::start(redis, heartbeat_timeout))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_registrations_call_counts_and_drains() {
    let Some(redis) = Redis::start() else { return };
    let r = three(&redis, "60s");
    let (m1, m2) = (mock("m1").await, mock("m2").await);
    let c = client();

    // A service registers through A; C routes to it within 1 s.
    r[0].register(&c, "m1", &m1).await;
    let took = time_until(Duration::from_secs(1), "C routes to m1", || async {
        r[2].answered_by(&c).await == "m1"
    })
    .await;
    eprintln!("registration through A routed by C after {took:?}");
    r[0].register(&c, "m2", &m2).await;
    all_route_to(&r, &c, &["m2"], Duration::from_secs(1)).await;

    // 3,000 requests over the three replicas under least_calls.
    let before = (m1.stats().requests, m2.stats().requests);
    let sent = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..12)
        .map(|w| {
            let (url, sent) = (r[w % 3].infer(), sent.clone());
            tokio::spawn(async move {
                let c = client();
                while sent.fetch_add(1, Ordering::Relaxed) < 3000 {
                    let a = post(&c, &url, br#"{"image_url":"x"}"#).await;
                    assert_eq!(a.status, 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let (n1, n2) = (
        m1.stats().requests - before.0,
        m2.stats().requests - before.1,
    );
    assert_eq!(n1 + n2, 3000);
    // Each instance within ±1 % of the even share (1,500).
    let off = (n1 as f64 - 1500.0).abs() / 1500.0;
    let (t1, t2) = (m1.stats().requests, m2.stats().requests);
    eprintln!(
        "3,000 requests over three replicas: m1 {n1}, m2 {n2} ({:.2} % off the even share); \
         since start (what least_calls balances) m1 {t1}, m2 {t2}",
        off * 100.0
    );
    assert!(off <= 0.01, "m1 {n1}, m2 {n2}: not within ±1 % of 1,500");
    // The platform statistics count the fleet's calls, on every replica.
    for x in &r {
        time_until(
            Duration::from_secs(2),
            "fleet-wide /inference_stats",
            || async {
                let j = get(
                    &c,
                    &format!("{}/api/v1/ai_analysis/inference_stats", x.admin),
                )
                .await
                .json();
                j["total_requests"].as_u64().unwrap_or(0) >= 3000
            },
        )
        .await;
    }

    // A drain sent to B stops A's and C's traffic to m1 within 1 s.
    let drained = send(
        &c,
        http::Method::POST,
        &format!("{}/api/v1/instances/{}/drain", r[1].admin, enc(&m1.url())),
        b"",
        &[],
    )
    .await;
    assert_eq!(drained.status, 200, "{:?}", drained.body);
    let at = Instant::now();
    let mut last_m1 = Duration::ZERO;
    while at.elapsed() < Duration::from_millis(2000) {
        for x in [&r[0], &r[2]] {
            if x.answered_by(&c).await == "m1" {
                last_m1 = at.elapsed();
            }
        }
    }
    eprintln!("drain through B: last request from A or C to m1 {last_m1:?} after it");
    assert!(
        last_m1 < Duration::from_secs(1),
        "m1 served {last_m1:?} after the drain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_redis_under_32_clients_fails_no_request_and_redis_is_refilled() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let r = Arc::new(three(&redis, "60s"));
    let (m1, m2, m3) = (mock("m1").await, mock("m2").await, mock("m3").await);
    let c = client();
    r[0].register(&c, "m1", &m1).await;
    r[1].register(&c, "m2", &m2).await;
    all_route_to(&r, &c, &["m1", "m2"], Duration::from_secs(2)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let (r, stop, ok, failed) = (r.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let a = post(&c, &r[w % 3].infer(), br#"{"image_url":"x"}"#).await;
                    match a.status == 200 {
                        true => ok.fetch_add(1, Ordering::Relaxed),
                        false => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    redis.kill();
    let c2 = c.clone();
    let r2 = r.clone();
    time_until(
        Duration::from_secs(3),
        "the replicas see Redis gone",
        || async { r2[1].metric(&c2, "fulcrum_redis_up").await == Some(0.0) },
    )
    .await;
    // A registration during the outage is served by the replica that took it at once.
    r[1].register(&c, "m3", &m3).await;
    let took = time_until(
        Duration::from_millis(500),
        "B routes to m3 in the outage",
        || async {
            for _ in 0..6 {
                if r[1].answered_by(&c).await == "m3" {
                    return true;
                }
            }
            false
        },
    )
    .await;
    eprintln!("registration in the outage served by its replica after {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redis comes back empty: the replicas refill it, and every replica
    // serves m3 within 2 s.
    redis.restart();
    let back = Instant::now();
    for x in [&r[0], &r[2]] {
        time_until(Duration::from_secs(2), "A and C route to m3", || async {
            for _ in 0..6 {
                if x.answered_by(&c).await == "m3" {
                    return true;
                }
            }
            false
        })
        .await;
    }
    eprintln!(
        "after Redis came back empty: A and C route to m3 within {:?}",
        back.elapsed()
    );
    assert!(back.elapsed() < Duration::from_secs(2));
    assert_eq!(
        redis.registrations(),
        3,
        "Redis refilled with every registration"
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let outages = r[0].metric(&c, "fulcrum_redis_outages_total").await;
    assert_eq!(outages, Some(1.0));
    eprintln!(
        "kill -9 of Redis under 32 clients: {} ok, {} failed",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_replica_leaves_its_registrations_to_the_others_while_heartbeats_go_on() {
    let Some(redis) = Redis::start() else { return };
    let mut r = three(&redis, "2s");
    let m1 = mock("m1").await;
    let c = client();
    r[0].register(&c, "m1", &m1).await;
    for x in &r[1..] {
        time_until(Duration::from_secs(1), "B and C route to m1", || async {
            x.answered_by(&c).await == "m1"
        })
        .await;
    }
    let _ = r[0].child.kill();
    let _ = r[0].child.wait();
    // 3 s of heartbeats (1.5 heartbeat timeouts) through B and C: m1 stays.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for x in &r[1..] {
            assert_eq!(x.heartbeat(&c, "m1").await, http::StatusCode::OK);
            assert_eq!(x.answered_by(&c).await, "m1", "m1 lost while heartbeating");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Without heartbeats, it expires everywhere.
    let gone = time_until(Duration::from_secs(5), "m1 expires on B and C", || async {
        r[1].answered_by(&c).await.is_empty() && r[2].answered_by(&c).await.is_empty()
    })
    .await;
    eprintln!("without heartbeats m1 left B and C after {gone:?} (timeout 2 s)");
    r.remove(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_told_one_replica_to_back_off_is_left_alone_by_all() {
    let Some(redis) = Redis::start() else { return };
    let r = three(&redis, "60s");
    let (m1, m2) = (mock("m1").await, mock("m2").await);
    let c = client();
    r[0].register(&c, "m1", &m1).await;
    r[0].register(&c, "m2", &m2).await;
    all_route_to(&r, &c, &["m1", "m2"], Duration::from_secs(2)).await;
    // m1 answers 503 with Retry-After: 2; A tries it once and backs off.
    m1.set_mode(fulcrum_mock::FailureMode::Overloaded);
    let before = m1.stats().requests;
    time_until(
        Duration::from_secs(2),
        "A tries m1 and is told to back off",
        || async {
            let _ = r[0].answered_by(&c).await;
            m1.stats().requests > before
        },
    )
    .await;
    // B and C learn it through Redis (within two flushes) and leave m1 alone.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tried = m1.stats().requests;
    for _ in 0..20 {
        for x in &r[1..] {
            assert_eq!(x.answered_by(&c).await, "m2");
        }
    }
    assert_eq!(
        m1.stats().requests,
        tried,
        "B or C sent to an instance that asked A to back off"
    );
}
