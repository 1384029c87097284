//! The demo's fleet: mock instances shaped like the seed fleet, the
//! gateway config in front of them, and the `vision` instances'
//! registration and heartbeats over the registry API, made exactly as the
//! platform's algorithm services make them.

use super::say::Say;
use crate::client::{self, Target};
use anyhow::{anyhow, Context};
use fulcrum_mock::{Latency, MockConfig, MockServer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A pool of the demo: its algorithm, what else its config says, and how
/// callers reach it.
struct Pool {
    name: &'static str,
    algorithm: &'static str,
    /// More keys of its `pools:` entry, one YAML line each.
    settings: &'static [&'static str],
    /// Its instances register themselves (reached through the registry's
    /// route, `/infer/{pool}`, rather than a route of the config).
    registered: bool,
    about: &'static str,
}

const POOLS: [Pool; 4] = [
    Pool {
        name: "asr",
        algorithm: "least_connections",
        // An ASR request is a POST: retried on the other instance even
        // when it may have reached the first, so an instance dying under
        // load costs callers nothing.
        settings: &["retry: { tries: 2, non_idempotent: true }"],
        registered: false,
        about: "least_connections, a failed try goes to the other instance",
    },
    Pool {
        name: "llm",
        algorithm: "response_time",
        settings: &[],
        registered: false,
        about:
            "response_time, answers streamed (SSE); the remote one takes what the local ones cannot",
    },
    Pool {
        name: "tts",
        algorithm: "weighted_round_robin",
        settings: &["cache: { ttl: 15s, max_size: 16MiB, methods: [POST] }"],
        registered: false,
        about: "weighted_round_robin 3:1, response cache on (15 s)",
    },
    Pool {
        name: "vision",
        algorithm: "least_calls",
        settings: &["registration: true"],
        registered: true,
        about: "least_calls; its instances register themselves and send heartbeats",
    },
];

/// One mock instance of the demo.
pub(super) struct Spec {
    pub name: &'static str,
    pool: &'static str,
    /// Median latency (log-normal, a little spread).
    pub latency_ms: u64,
    /// More keys of its `instances:` entry (after the endpoint).
    keys: &'static str,
    about: &'static str,
    /// Registers itself over the registry API instead of being configured.
    registers: bool,
}

const fn spec(name: &'static str, pool: &'static str, latency_ms: u64) -> Spec {
    Spec {
        name,
        pool,
        latency_ms,
        keys: "",
        about: "",
        registers: false,
    }
}

/// The LLM instance the incidents slow down, and the ASR instance they kill.
pub(super) const SLOW_LLM: usize = 2;
pub(super) const DYING_ASR: usize = 1;

pub(super) const SPECS: [Spec; 9] = [
    spec("asr-1", "asr", 40),
    spec("asr-2", "asr", 40),
    with(
        spec("llm-local-1", "llm", 40),
        LOCAL,
        "local, priority high",
    ),
    with(
        spec("llm-local-2", "llm", 40),
        LOCAL,
        "local, priority high",
    ),
    with(
        spec("llm-remote", "llm", 150),
        ", priority: low",
        "remote, priority low",
    ),
    with(spec("tts-1", "tts", 20), ", weight: 3", "weight 3"),
    with(spec("tts-2", "tts", 20), ", weight: 1", "weight 1"),
    registered(spec("vision-1", "vision", 30)),
    registered(spec("vision-2", "vision", 30)),
];

/// The local LLM instances' keys: the first tier, three requests at once.
const LOCAL: &str = ", priority: high, max_concurrent: 3";

/// `s` with more keys in its `instances:` entry, and their description.
const fn with(s: Spec, keys: &'static str, about: &'static str) -> Spec {
    Spec { keys, about, ..s }
}

/// `s` registering itself rather than in the config.
const fn registered(s: Spec) -> Spec {
    Spec {
        registers: true,
        about: "registered",
        ..s
    }
}

/// The path a registered instance infers on (its endpoint is its URL plus this).
const INFER_PATH: &str = "/infer";
/// The `vision` instances' `service_id`, and how often they send a heartbeat.
const SERVICE_ID: &str = "vision-demo";
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The config around the pools: access log off (the demo prints its own
/// lines), a short recent window so shares move within seconds, fast
/// health checks so a dead instance is seen down (and back up) in a few
/// seconds, and registrations that expire 15 s after their last heartbeat.
const SETTINGS: &str = "access_log: { path: off }
stats: { window: 20s }
health_check: { interval: 1s, timeout: 500ms, failure_threshold: 2, recovery_threshold: 2 }
passive: { max_fails: 2, fail_timeout: 10s }
registry: { heartbeat_timeout: 15s }
";

/// A latency around `median_ms`.
pub(super) fn latency(median_ms: u64) -> Latency {
    Latency::LogNormal {
        median: Duration::from_millis(median_ms),
        sigma: 0.25,
    }
}

/// The demo's config: `listen` and `admin` as given, one `pools:` entry
/// per pool with the instances of `urls` (one per [`SPECS`] entry, in its
/// order) that do not register themselves, a route per configured pool.
fn yaml(listen: SocketAddr, admin: SocketAddr, urls: &[String]) -> String {
    let mut y =
        format!("listen: \"{listen}\"\nadmin: {{ listen: \"{admin}\" }}\n{SETTINGS}pools:\n");
    for p in &POOLS {
        y += &format!("  {}:\n    algorithm: {}\n", p.name, p.algorithm);
        for s in p.settings {
            y += &format!("    {s}\n");
        }
        let members: Vec<String> = SPECS
            .iter()
            .zip(urls)
            .filter(|(s, _)| s.pool == p.name && !s.registers)
            .map(|(s, url)| format!("      - {{ endpoint: \"{url}\"{} }}\n", s.keys))
            .collect();
        if !members.is_empty() {
            y += "    instances:\n";
            y += &members.concat();
        }
    }
    y += "routes:\n";
    for p in POOLS.iter().filter(|p| !p.registered) {
        y += &format!(
            "  - {{ path_prefix: /{0}/, pool: {0}, strip_prefix: true }}\n",
            p.name
        );
    }
    y
}

/// The running mock instances, in [`SPECS`]' order.
pub(super) struct Fleet {
    servers: Vec<Arc<MockServer>>,
}

impl Fleet {
    /// Starts every instance on a free loopback port.
    pub async fn start() -> anyhow::Result<Fleet> {
        let mut servers = Vec::with_capacity(SPECS.len());
        for (i, s) in SPECS.iter().enumerate() {
            let cfg = MockConfig {
                name: s.name.into(),
                latency: latency(s.latency_ms),
                seed: Some(i as u64 + 1),
                ..MockConfig::default()
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = MockServer::start(addr, cfg)
                .await
                .with_context(|| format!("cannot start the mock instance {}", s.name))?;
            servers.push(Arc::new(server));
        }
        Ok(Fleet { servers })
    }

    fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url()).collect()
    }

    /// The endpoint the gateway knows `SPECS[i]` by.
    fn endpoint(&self, i: usize) -> String {
        let url = self.servers[i].url();
        if SPECS[i].registers {
            url + INFER_PATH
        } else {
            url
        }
    }

    /// The gateway's config for this fleet (without the registry's path).
    pub fn config(
        &self,
        listen: SocketAddr,
        admin: SocketAddr,
    ) -> anyhow::Result<fulcrum_config::Config> {
        let text = yaml(listen, admin, &self.urls());
        fulcrum_config::parse(&text, &|_| None)
            .map_err(|e| anyhow!("the demo's own config is invalid (a bug):\n{e}\n{text}"))
    }

    /// Each instance's name by the endpoint the gateway knows it by.
    pub fn names(&self) -> HashMap<String, &'static str> {
        (0..SPECS.len())
            .map(|i| (self.endpoint(i), SPECS[i].name))
            .collect()
    }

    /// The fleet, pool by pool, a line each.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for p in &POOLS {
            lines.push(format!("pool {}: {}", p.name, p.about));
            for (i, s) in SPECS.iter().enumerate().filter(|(_, s)| s.pool == p.name) {
                let about = if s.about.is_empty() {
                    String::new()
                } else {
                    format!(", {}", s.about)
                };
                lines.push(format!(
                    "  {:<12} {}  ~{} ms{about}",
                    s.name,
                    self.endpoint(i),
                    s.latency_ms
                ));
            }
        }
        lines
    }

    pub fn slow_llm(&self) -> Arc<MockServer> {
        self.servers[SLOW_LLM].clone()
    }

    pub fn dying_asr(&self) -> Arc<MockServer> {
        self.servers[DYING_ASR].clone()
    }

    /// Registers every instance that registers itself with the gateway's
    /// registry at `admin`, and starts their heartbeats.
    pub async fn register(&self, admin: SocketAddr, say: Say) -> anyhow::Result<Registered> {
        let target = Target {
            admin: format!("http://{admin}"),
            token: None,
            json: false,
        };
        let mut members = Vec::new();
        for (i, s) in SPECS.iter().enumerate().filter(|(_, s)| s.registers) {
            let body = serde_json::json!({
                "service_id": SERVICE_ID,
                "name": s.name,
                "task_types": [s.pool],
                "endpoint": self.endpoint(i),
                "version": "1.0.0",
                "health_path": "/health",
            });
            let answer = client::request(
                &target,
                http::Method::POST,
                "/api/v1/ai_analysis/register",
                Some(body.to_string()),
            )
            .await
            .with_context(|| format!("cannot register {}", s.name))?;
            let id = answer["instance_id"]
                .as_str()
                .with_context(|| format!("registering {} gave no instance_id: {answer}", s.name))?
                .to_string();
            members.push(Member {
                name: s.name,
                id,
                server: self.servers[i].clone(),
            });
        }
        let members = Arc::new(members);
        let heartbeats = tokio::spawn(heartbeats(target.clone(), members.clone(), say));
        Ok(Registered {
            target,
            members,
            heartbeats,
        })
    }
}

/// A registered instance.
struct Member {
    name: &'static str,
    /// Its `instance_id`, as `register` answered.
    id: String,
    server: Arc<MockServer>,
}

/// Sends each member's heartbeat, with its request count, every
/// [`HEARTBEAT_EVERY`].
async fn heartbeats(target: Target, members: Arc<Vec<Member>>, say: Say) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.tick().await; // registering was the first sign of life
    loop {
        tick.tick().await;
        for m in members.iter() {
            let body = serde_json::json!({ "total_requests": m.server.stats().requests });
            let path = format!("/api/v1/ai_analysis/heartbeat/{}", m.id);
            if let Err(e) =
                client::request(&target, http::Method::POST, &path, Some(body.to_string())).await
            {
                say.line(format_args!("heartbeat of {} failed: {e:#}", m.name));
            }
        }
    }
}

/// The registered instances and their heartbeats.
pub(super) struct Registered {
    target: Target,
    members: Arc<Vec<Member>>,
    heartbeats: tokio::task::JoinHandle<()>,
}

impl Registered {
    /// Stops the heartbeats and unregisters every member, as a service
    /// shutting down does.
    pub async fn unregister(self, say: Say) {
        self.heartbeats.abort();
        for m in self.members.iter() {
            let path = format!("/api/v1/ai_analysis/unregister/{}", m.id);
            if let Err(e) = client::request(&self.target, http::Method::DELETE, &path, None).await {
                say.line(format_args!("cannot unregister {}: {e:#}", m.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_policy::Priority;

    #[test]
    fn the_config_is_shaped_like_the_seed_fleet() {
        let urls: Vec<String> = (0..SPECS.len())
            .map(|i| format!("http://127.0.0.1:{}", 41000 + i))
            .collect();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let text = yaml(any, any, &urls);
        let cfg = fulcrum_config::parse(&text, &|_| None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let names: Vec<&str> = cfg.pools.keys().map(String::as_str).collect();
        assert_eq!(names, ["asr", "llm", "tts", "vision"]);
        let pool = |n: &str| &cfg.pools[n];
        assert_eq!(pool("asr").instances.len(), 2);
        assert_eq!(pool("asr").algorithm.name(), "least_connections");
        let llm = pool("llm");
        assert_eq!(llm.algorithm.name(), "response_time");
        let tiers: Vec<Priority> = llm.instances.iter().map(|i| i.priority).collect();
        assert_eq!(tiers, [Priority::High, Priority::High, Priority::Low]);
        assert_eq!(llm.instances[SLOW_LLM - 2].endpoint.url, urls[SLOW_LLM]);
        let tts = pool("tts");
        assert_eq!(tts.algorithm.name(), "weighted_round_robin");
        let weights: Vec<u32> = tts.instances.iter().map(|i| i.weight).collect();
        assert_eq!(weights, [3, 1]);
        assert!(tts.cache.is_some());
        let vision = pool("vision");
        assert!(vision.registration && vision.instances.is_empty());
        assert_eq!(cfg.routes.len(), 3);
        assert!(cfg.registry.enabled);
        assert_eq!(cfg.stats.window, Duration::from_secs(20));
        assert_eq!(SPECS[SLOW_LLM].name, "llm-local-1");
        assert_eq!(SPECS[DYING_ASR].name, "asr-2");
    }
}
