use bytes::Bytes;
use fulcrum::app::Running;
use fulcrum_mock::{MockConfig, MockServer};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Starts a mock instance on a free loopback port.
pub async fn mock(name: &str) -> MockServer {
    mock_with(MockConfig {
        name: name.into(),
        ..MockConfig::default()
    })
    .await
}

pub async fn mock_with(cfg: MockConfig) -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .expect("mock starts")
}

/// Mocks that each work on `capacity` requests at a time, `ms` each, the
/// rest waiting in the mock's own queue (like a GPU batch), by name.
pub async fn batch_mocks(specs: &[(&str, usize)], ms: u64) -> Vec<MockServer> {
    let mut out = vec![];
    for (name, capacity) in specs {
        out.push(
            mock_with(MockConfig {
                name: (*name).into(),
                latency: fulcrum_mock::Latency::Fixed(Duration::from_millis(ms)),
                capacity: Some(*capacity),
                ..MockConfig::default()
            })
            .await,
        );
    }
    out
}

/// A gateway with one pool `p` of `m` (the pool's `settings`, YAML lines
/// at pool level, before its instances), every path routed to it.
pub async fn one_pool(m: &[MockServer], settings: &str) -> Running {
    let instances: Vec<String> = m
        .iter()
        .map(|m| format!("      - {{ endpoint: \"{}\" }}\n", m.url()))
        .collect();
    gateway(&format!(
        "pools:\n  p:\n{settings}    instances:\n{}routes: [ {{ path_prefix: /, pool: p }} ]\n",
        instances.concat()
    ))
    .await
}

/// Starts a gateway from YAML; both listeners on free loopback ports.
pub async fn gateway(yaml: &str) -> Running {
    let registry = if yaml.contains("registry:") {
        String::new()
    } else {
        format!("registry: {{ path: \"{}\" }}\n", scratch_dir())
    };
    // `admin: { token: … }` in a test's YAML is merged with the listener.
    let (admin, yaml) = match yaml.strip_prefix("admin: { ") {
        Some(rest) => {
            let (inner, after) = rest.split_once(" }\n").expect("admin line");
            (
                format!("admin: {{ listen: 127.0.0.1:0, {inner} }}\n"),
                after.to_string(),
            )
        }
        None => (
            "admin: { listen: 127.0.0.1:0 }\n".to_string(),
            yaml.to_string(),
        ),
    };
    // No access lines over the test output unless a test asks for them.
    let access_log = if yaml.contains("access_log:") {
        ""
    } else {
        "access_log: { path: off }\n"
    };
    let full = format!("listen: 127.0.0.1:0\n{admin}{registry}{access_log}{yaml}");
    let cfg = fulcrum_config::parse(&full, &|_| None)
        .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{full}"));
    fulcrum::app::start_with_grace(cfg, Duration::from_secs(2))
        .await
        .expect("gateway starts")
}

/// A gateway routing everything (`/`) to one pool `p` of `m` alone.
pub async fn gateway_to(m: &MockServer) -> Running {
    gateway(&format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        m.url()
    ))
    .await
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn instance(&self) -> String {
        self.headers
            .get("x-mock-instance")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

pub async fn send(
    c: &TestClient,
    method: Method,
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Resp {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .expect("request completes");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body completes").to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(c: &TestClient, url: &str) -> Resp {
    send(c, Method::GET, url, b"", &[]).await
}

pub async fn post(c: &TestClient, url: &str, body: &[u8]) -> Resp {
    send(c, Method::POST, url, body, &[]).await
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stats row of `endpoint` in `pool`.
pub fn stats(gw: &Running, pool: &str, endpoint: &str) -> fulcrum_dataplane::MemberStats {
    gw.gateway
        .stats()
        .into_iter()
        .find(|p| p.name == pool)
        .and_then(|p| {
            p.instances
                .into_iter()
                .find(|i| i.stats.endpoint == endpoint)
        })
        .expect("instance in stats")
}

/// A fresh directory under the system temp dir (for a registry store).
pub fn scratch_dir() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("fulcrum-it-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}

/// The config lines every test gateway starts with: loopback listeners on
/// free ports, a private registry store and no access log.
pub fn test_header() -> String {
    format!(
        "listen: 127.0.0.1:0\nadmin: {{ listen: 127.0.0.1:0 }}\nregistry: {{ path: \"{}\" }}\naccess_log: {{ path: off }}\n",
        scratch_dir()
    )
}

/// A loopback port that was free a moment ago, for a gateway process that
/// must be told its port in its config file.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A path of the registry API on the admin listener.
/// The row of `endpoint` in the first pool of a `/api/v1/pools` answer.
pub fn pool_row(pools: &serde_json::Value, endpoint: &str) -> serde_json::Value {
    pools["pools"][0]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("no row for {endpoint}"))
        .clone()
}

/// The pool called `name` as `GET /api/v1/pools` shows it.
pub async fn pool_json(c: &TestClient, gw: &Running, name: &str) -> serde_json::Value {
    let pools = get(c, &format!("http://{}/api/v1/pools", gw.admin_addr))
        .await
        .json();
    pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no pool {name}: {pools}"))
        .clone()
}

pub fn registry_api(gw: &Running, path: &str) -> String {
    format!("http://{}/api/v1/ai_analysis{path}", gw.admin_addr)
}

/// `POST /register` with a JSON body.
pub async fn register(c: &TestClient, gw: &Running, body: serde_json::Value) -> Resp {
    send(
        c,
        Method::POST,
        &registry_api(gw, "/register"),
        body.to_string().as_bytes(),
        &[("content-type", "application/json")],
    )
    .await
}

/// Sends `bytes` on a new connection and reads the answer until the
/// connection closes (at most 5 s).
pub async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// An endpoint URL as an `{id}` of the native admin API (percent-encoded).
pub fn enc(url: &str) -> String {
    url.replace(':', "%3A").replace('/', "%2F")
}

/// A child process of a test: killed and waited for when dropped, on
/// every path the test takes (a failed assertion included). Its stdin and
/// stderr are null and its stdout piped, never the harness's own.
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    pub fn spawn(cmd: &mut std::process::Command) -> ChildGuard {
        use std::process::Stdio;
        ChildGuard(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the child starts"),
        )
    }

    /// Its stdout, line by line as it comes (read on a thread).
    pub fn lines(&mut self) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        use std::io::BufRead;
        let out = self.0.stdout.take().expect("stdout piped, taken once");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (`-TERM`, `-INT`, …) to process `pid`.
pub fn kill(pid: u32, sig: &str) {
    assert!(std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// `GET url` as JSON, or `None` when there is no (JSON) answer within 5 s.
pub async fn try_json(c: &TestClient, url: &str) -> Option<serde_json::Value> {
    let req = Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(5), c.request(req))
        .await
        .ok()?
        .ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

/// Starts `fulcrum serve -c file --threads 1` and returns once it logs
/// that it is serving; its stderr is drained on a thread, its stdout is
/// null (a child left running by a failed test must not hold the suite's
/// pipe open).
pub fn spawn_serving(file: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["serve", "-c", file, "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("fulcrum is serving") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "gateway exited before serving"
        );
    }
    std::thread::spawn(move || for _ in err.lines() {});
    child
}

/// `clients` callers sending `GET url` back to back until `stop`, each
/// answer asserted 200; the count of answers so far, and the tasks.
pub fn closed_loop(
    url: &str,
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = (0..clients)
        .map(|_| {
            let (url, done, stop) = (url.to_string(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Relaxed) {
                    let r = get(&c, &url).await;
                    assert_eq!(r.status, 200, "{:?}", r.body);
                    done.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    (done, tasks)
}
