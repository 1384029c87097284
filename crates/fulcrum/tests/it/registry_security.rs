//! The registry's doors (issue #11): who may join which pool, which
//! endpoints are refused, what a caller learns from an error, what the log
//! shows of a registered value, and the limits on what one caller can add.

use crate::common::*;
use http::Method;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::registry_api as api;

fn body(service_id: &str, endpoint: &str, tasks: &[&str]) -> serde_json::Value {
    json!({"service_id": service_id, "task_types": tasks, "endpoint": endpoint})
}

async fn total(c: &TestClient, gw: &fulcrum::app::Running) -> u64 {
    get(c, &api(gw, "/services")).await.json()["total"]
        .as_u64()
        .unwrap()
}

/// Everything logged on this thread while it lives, as the `fmt` layer
/// writes it (a current-thread runtime polls the whole gateway here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(sub))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_never_joins_a_configured_pool_unless_it_opts_in() {
    let (own, intruder) = (mock("own").await, mock("intruder").await);
    let gw = gateway(&format!(
        "pools:\n  llm:\n    instances: [ {{ endpoint: \"{}\" }} ]\nroutes: [ {{ path_prefix: /llm/, pool: llm }} ]\n",
        own.url()
    ))
    .await;
    let c = client();
    let ep = format!("{}/infer", intruder.url());
    let r = register(&c, &gw, body("evil", &ep, &["llm"])).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(e.contains("pools.llm.registration"), "{e}");
    // With an allowed task type too, the whole registration is refused.
    let r = register(&c, &gw, body("evil", &ep, &["other", "llm"])).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(total(&c, &gw).await, 0);
    for _ in 0..10 {
        let r = get(&c, &format!("http://{}/llm/x", gw.proxy_addr)).await;
        assert_eq!((r.status.as_u16(), r.instance()), (200, "own".into()));
    }
    assert_eq!(
        intruder.stats().requests,
        0,
        "the static pool was not joined"
    );
    let infer = format!("http://{}/infer/other", gw.proxy_addr);
    assert_eq!(post(&c, &infer, b"{}").await.status, 404);

    // A task type without a `pools:` entry still forms the registry's own pool.
    let r = register(&c, &gw, body("ok", &ep, &["other"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = post(&c, &infer, b"{}").await;
    assert_eq!((r.status.as_u16(), r.instance()), (200, "intruder".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_can_restrict_ports() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", allowed_hosts: [\"127.0.0.1:{}\", \"127.0.0.0/8:1-2\"] }}\n",
        scratch_dir(),
        a.addr().port()
    ))
    .await;
    let c = client();
    let r = register(&c, &gw, body("a", &format!("{}/infer", a.url()), &["t"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = register(&c, &gw, body("b", &format!("{}/infer", b.url()), &["t"])).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("registry.allowed_hosts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_entry_admits_that_name_only() {
    let m = mock("m").await;
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", allowed_hosts: [localhost] }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    let port = m.addr().port();
    let r = register(
        &c,
        &gw,
        body("ip", &format!("http://127.0.0.1:{port}/infer"), &["t"]),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "what `localhost` resolves to is not admitted"
    );
    let r = register(
        &c,
        &gw,
        body("name", &format!("http://localhost:{port}/infer"), &["t"]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_no_longer_allowed_are_dropped_at_restart_and_reload() {
    let (a, b) = (mock("a").await, mock("b").await);
    let dir = scratch_dir();
    let c = client();
    let open = format!("registry: {{ path: \"{dir}\" }}\n");
    let gw = gateway(&open).await;
    for (sid, m) in [("a", &a), ("b", &b)] {
        let r = register(&c, &gw, body(sid, &format!("{}/infer", m.url()), &["t"])).await;
        assert_eq!(r.status, 200);
    }
    gw.shutdown().await;

    // Restarted with only `a` allowed: `b` is dropped, not routed.
    let only_a = format!(
        "registry: {{ path: \"{dir}\", allowed_hosts: [\"127.0.0.1:{}\"] }}\n",
        a.addr().port()
    );
    let gw = gateway(&only_a).await;
    let list = get(&c, &api(&gw, "/services")).await.json();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["services"][0]["service_id"], "a");
    for _ in 0..6 {
        let r = post(&c, &format!("http://{}/infer/t", gw.proxy_addr), b"{}").await;
        assert_eq!((r.status.as_u16(), r.instance()), (200, "a".into()));
    }

    // Reloaded with nothing of loopback allowed: `a` goes too.
    let none = format!(
        "listen: 127.0.0.1:0\naccess_log: {{ path: off }}\nadmin: {{ listen: 127.0.0.1:0 }}\nregistry: {{ path: \"{dir}\", allowed_hosts: [10.1.2.3] }}\n"
    );
    gw.reload(fulcrum_config::parse(&none, &|_| None).unwrap())
        .unwrap();
    assert_eq!(total(&c, &gw).await, 0);
    let r = post(&c, &format!("http://{}/infer/t", gw.proxy_addr), b"{}").await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_on_the_gateways_own_listeners_are_refused_at_registration() {
    let m = mock("m").await;
    let gw = gateway("").await;
    let c = client();
    let (p, a) = (gw.proxy_addr.port(), gw.admin_addr.port());
    for ep in [
        format!("http://127.0.0.1:{a}/api/v1/ai_analysis/clear_all"),
        format!("http://localhost:{a}/api/v1/pools"),
        format!("http://LocalHost:{a}/"),
        format!("http://0.0.0.0:{a}/"),
        format!("http://[::1]:{a}/"),
        format!("http://127.0.0.1:{p}/infer/t"),
        format!("http://127.9.9.9:{p}/"),
        format!("http://[::]:{p}/"),
    ] {
        let r = register(&c, &gw, body("loop", &ep, &["t"])).await;
        assert_eq!(r.status, 403, "{ep}: {:?}", r.body);
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains("own"), "{ep}: {e}");
    }
    assert_eq!(total(&c, &gw).await, 0);
    // Another port on loopback is someone else's.
    let r = register(&c, &gw, body("m", &format!("{}/infer", m.url()), &["t"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_never_connects_to_its_own_listeners() {
    // A configured instance on the admin listener, by a name the
    // registration check never sees: refused when connecting.
    let m = mock("m").await;
    let admin = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:0\naccess_log: {{ path: off }}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ path: \"{}\" }}\npools:\n  loop:\n    retry: {{ tries: 1 }}\n    instances: [ {{ endpoint: \"http://localhost:{admin}/api/v1/ai_analysis\" }} ]\nroutes: [ {{ path_prefix: /, pool: loop }} ]\n",
        scratch_dir()
    );
    let cfg = fulcrum_config::parse(&yaml, &|_| None).unwrap();
    let gw = fulcrum::app::start_with_grace(cfg, Duration::from_secs(1))
        .await
        .unwrap();
    let c = client();
    let r = register(&c, &gw, body("m", &format!("{}/infer", m.url()), &["t"])).await;
    assert_eq!(r.status, 200);
    let r = post(&c, &format!("http://{}/clear_all", gw.proxy_addr), b"").await;
    assert!(
        r.status == 502 || r.status == 503,
        "{}: {:?}",
        r.status,
        r.body
    );
    assert_eq!(total(&c, &gw).await, 1, "not cleared through the proxy");
    let r = get(&c, &format!("http://{}/services", gw.proxy_addr)).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("services"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_names_at_most_16_task_types_by_default() {
    let m = mock("m").await;
    let gw = gateway("").await;
    let c = client();
    let ep = format!("{}/infer", m.url());
    let names: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let tasks: Vec<&str> = names.iter().map(String::as_str).collect();
    let r = register(&c, &gw, body("s", &ep, &tasks)).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("registry.max_task_types"));
    assert_eq!(total(&c, &gw).await, 0);
    let r = register(&c, &gw, body("s", &ep, &tasks[..16])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_holds_at_most_max_instances() {
    let (a, b, m) = (mock("a").await, mock("b").await, mock("m").await);
    let gw = gateway(&format!(
        "registry: {{ path: \"{}\", max_instances: 2, max_task_types: 3 }}\n",
        scratch_dir()
    ))
    .await;
    let c = client();
    for x in [&a, &b] {
        let r = register(&c, &gw, body("s", &format!("{}/infer", x.url()), &["t"])).await;
        assert_eq!(r.status, 200);
    }
    let r = register(&c, &gw, body("s", &format!("{}/infer", m.url()), &["t"])).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("registry.max_instances"));
    // Replacing a registration (same endpoint) is not a new instance.
    let r = register(
        &c,
        &gw,
        body("s", &format!("{}/infer", a.url()), &["t", "u", "v"]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = register(
        &c,
        &gw,
        body("s", &format!("{}/infer", a.url()), &["t", "u", "v", "w"]),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(total(&c, &gw).await, 2);
}

// Current-thread runtimes: the captured subscriber is this thread's, and
// the whole gateway runs on it.

#[tokio::test]
async fn a_registry_open_beyond_loopback_without_a_token_is_warned_about_at_start() {
    for (admin, token, warned) in [
        ("0.0.0.0:0", "", true),
        ("127.0.0.1:0", "", false),
        ("0.0.0.0:0", ", token: t0k", false),
    ] {
        let (logs, _guard) = Logs::capture();
        let yaml = format!(
            "listen: 127.0.0.1:0\naccess_log: {{ path: off }}\nadmin: {{ listen: \"{admin}\" }}\nregistry: {{ path: \"{}\"{token} }}\n",
            scratch_dir()
        );
        let cfg = fulcrum_config::parse(&yaml, &|_| None).unwrap();
        let gw = fulcrum::app::start_with_grace(cfg, Duration::from_secs(1))
            .await
            .unwrap();
        gw.shutdown().await;
        let text = logs.text();
        let warning = text
            .lines()
            .any(|l| l.contains("WARN") && l.contains("registry.token"));
        assert_eq!(warning, warned, "{admin}{token}:\n{text}");
    }
}

#[tokio::test]
async fn a_forged_log_line_is_stored_as_sent_and_logged_escaped() {
    let (logs, _guard) = Logs::capture();
    let m = mock("m").await;
    let gw = gateway("").await;
    let c = client();
    let sid = "svc\nERROR fulcrum: forged\r\x1b[31m";
    let r = register(
        &c,
        &gw,
        body(sid, &format!("{}/infer", m.url()), &["t\nERROR x"]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let list = get(&c, &api(&gw, "/services")).await.json();
    assert_eq!(list["services"][0]["service_id"], sid, "stored as sent");
    let r = send(
        &c,
        Method::DELETE,
        &api(
            &gw,
            "/unregister/svc%0AERROR%20fulcrum%3A%20forged%0D%1B%5B31m",
        ),
        b"",
        &[],
    )
    .await;
    assert_eq!(r.json()["removed"], 1);
    gw.shutdown().await;
    let text = logs.text();
    for raw in ["\nERROR fulcrum", "\nERROR x", "\r", "\x1b"] {
        assert!(!text.contains(raw), "{raw:?} logged raw:\n{text}");
    }
    assert!(
        text.contains(r"svc\nERROR fulcrum: forged\r\u{1b}[31m"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_ports_at_the_edge_of_the_range() {
    // Ports 65536, 99999, -1 and an empty port (`http://h:/x`) are refused
    // with 400 by the endpoint validation of the config crate (issue #11,
    // finding 7); `http::Uri` alone took them as port 80.
    let gw = gateway("").await;
    let c = client();
    for ep in [
        "http://127.0.0.1:65536/x",
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1:-1/x",
        "http://127.0.0.1:/x",
    ] {
        let r = register(&c, &gw, body("s", ep, &["t"])).await;
        assert_eq!(r.status, 400, "{ep}: {:?}", r.body);
        assert!(String::from_utf8_lossy(&r.body).contains("port"), "{ep}");
    }
    assert_eq!(total(&c, &gw).await, 0);
    let r = register(&c, &gw, body("s", "http://127.0.0.1:65535/x", &["t"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(total(&c, &gw).await, 1);
}
