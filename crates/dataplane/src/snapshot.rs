//! The immutable runtime snapshot the request path reads.
//!
//! The control plane builds a new [`Snapshot`] from a config (reusing the
//! live [`InstanceState`] of every endpoint it already knew, so counters and
//! health survive a reload) and publishes it with `ArcSwap`; a request loads
//! the current one once and works on it to the end.

use crate::instance::InstanceState;
use fulcrum_config::{Config, Pool as PoolConfig, Route};
use fulcrum_policy::{build, hash_bytes, rejoin_floor, Balancer, Candidate, Priority, Slot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// A pool's admission queue: requests waiting, in arrival order, for an
/// instance below `max_concurrent`.
///
/// Strict FIFO: only the request at the head may take a freed slot, and a
/// newcomer joins the back whenever anyone is waiting. A release wakes the
/// head; the head also re-checks every [`HEAD_RECHECK`] so an instance that
/// recovers or ends a cool-down (which frees no slot) is noticed too.
#[derive(Debug, Default)]
pub struct Waiters {
    queue: std::sync::Mutex<WaitQueue>,
    pub waiting: AtomicU32,
}

#[derive(Debug, Default)]
struct WaitQueue {
    next_id: u64,
    q: std::collections::VecDeque<(u64, Arc<Notify>)>,
}

/// How often the head of a queue looks again without being woken.
pub const HEAD_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the request at the head of the queue, if any.
    pub fn wake_one(&self) {
        if self.waiting.load(Relaxed) > 0 {
            if let Some((_, n)) = self.lock().q.front() {
                n.notify_one();
            }
        }
    }

    /// Joins the back of the queue; returns the ticket and its bell.
    pub fn join(&self) -> (u64, Arc<Notify>) {
        let mut w = self.lock();
        let id = w.next_id;
        w.next_id += 1;
        let bell = Arc::new(Notify::new());
        w.q.push_back((id, bell.clone()));
        self.waiting.store(w.q.len() as u32, Relaxed);
        (id, bell)
    }

    /// Whether ticket `id` is at the head.
    pub fn is_head(&self, id: u64) -> bool {
        self.lock().q.front().is_some_and(|(h, _)| *h == id)
    }

    /// Leaves the queue (served, timed out or cancelled) and lets the next
    /// head look for a slot.
    pub fn leave(&self, id: u64) {
        let mut w = self.lock();
        w.q.retain(|(i, _)| *i != id);
        self.waiting.store(w.q.len() as u32, Relaxed);
        if let Some((_, n)) = w.q.front() {
            n.notify_one();
        }
    }
}

/// With `slow_start`, weights are multiplied by this so that even weight 1
/// can ramp (from a tenth of its share) instead of being stuck at 1.
pub const SLOW_START_SCALE: u32 = 100;

/// One instance as a member of one pool.
#[derive(Debug, Clone)]
pub struct Member {
    pub inst: Arc<InstanceState>,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub priority: Priority,
}

#[derive(Debug)]
pub struct PoolRuntime {
    pub cfg: PoolConfig,
    pub members: Vec<Member>,
    pub balancer: Box<dyn Balancer>,
    pub waiters: Arc<Waiters>,
    /// The response cache, when the pool has `cache:`.
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
}

impl PoolRuntime {
    /// The selector's view of every member at `now_ms`, skipping `excluded` slots.
    pub fn slots(&self, now_ms: u64, excluded: &[usize], ignore_health: bool, out: &mut Vec<Slot>) {
        let inputs = self.cfg.algorithm.inputs();
        let slow_start = self.cfg.slow_start.as_millis() as u64;
        out.clear();
        out.extend(self.members.iter().enumerate().map(|(i, m)| {
            let inst = &m.inst;
            let usable = !excluded.contains(&i)
                && if ignore_health {
                    !inst.is_drained()
                } else {
                    inst.usable(now_ms)
                };
            let mut cand = Candidate {
                max_concurrent: m.max_concurrent,
                priority: m.priority,
                ..Candidate::new(
                    i,
                    {
                        // An operator's weight override applies in every pool.
                        let w = inst.weight_override().unwrap_or(m.weight);
                        if slow_start > 0 {
                            inst.effective_weight(
                                w.saturating_mul(SLOW_START_SCALE),
                                slow_start,
                                now_ms,
                            )
                        } else {
                            w
                        }
                    },
                    inst.in_flight(),
                )
            };
            if usable {
                if inputs.calls {
                    cand.calls = inst.calls.load(Relaxed);
                }
                if inputs.latency {
                    (cand.latency_ms, cand.error_rate) = inst.perf(now_ms, cand.in_flight);
                }
                if inputs.resources {
                    if let Some(r) = inst.load_report(now_ms) {
                        (cand.cpu, cand.mem) = (r.cpu, r.mem);
                    }
                }
            }
            Slot { usable, cand }
        }));
        if inputs.calls {
            // Hold instances out of service at the in-service minimum, so
            // one returning from an outage rejoins level, not far behind.
            let floors: Vec<(Priority, Option<u64>)> = out
                .iter()
                .filter(|s| !s.usable)
                .map(|s| (s.cand.priority, rejoin_floor(out, s.cand.priority)))
                .collect();
            for (m, s) in self
                .members
                .iter()
                .zip(out.iter())
                .filter(|(_, s)| !s.usable)
            {
                if let Some((_, Some(floor))) = floors.iter().find(|(p, _)| *p == s.cand.priority) {
                    m.inst.calls.fetch_max(*floor, Relaxed);
                }
            }
        }
    }

    /// Whether tries should feed the latency and error estimates.
    pub fn measures(&self) -> bool {
        let i = self.cfg.algorithm.inputs();
        i.latency || i.resources
    }
}

/// Why no pool takes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMiss {
    NoRoute,
    /// The registry route, for a task type nobody registered.
    NoService(String),
}

#[derive(Debug)]
pub struct RouteEntry {
    pub route: Route,
    pub pool: usize,
}

#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    /// Most specific first: longer prefix, then host-bound before any-host.
    pub routes: Vec<RouteEntry>,
    pub pools: Vec<Arc<PoolRuntime>>,
    /// Every distinct instance, by endpoint URL.
    pub instances: HashMap<String, Arc<InstanceState>>,
    /// Pool positions by name.
    index: HashMap<String, usize>,
}

/// Gives every `https://` instance its TLS settings: the system's roots
/// plus the CA files of every pool it is in. Settings are shared between
/// instances with the same files.
fn set_upstream_tls(pools: &[Arc<PoolRuntime>], instances: &HashMap<String, Arc<InstanceState>>) {
    let mut per_instance: HashMap<&str, Vec<&fulcrum_config::UpstreamTls>> = HashMap::new();
    for p in pools {
        for m in p
            .members
            .iter()
            .filter(|m| m.inst.endpoint.scheme == "https")
        {
            let v = per_instance
                .entry(m.inst.endpoint.url.as_str())
                .or_default();
            if !v.contains(&&p.cfg.tls) {
                v.push(&p.cfg.tls);
            }
        }
    }
    let mut configs: HashMap<Vec<&std::path::Path>, Result<_, String>> = HashMap::new();
    for (url, settings) in per_instance {
        let inst = &instances[url];
        let cas: Vec<&std::path::Path> = settings.iter().filter_map(|t| t.ca.as_deref()).collect();
        let config = configs
            .entry(cas)
            .or_insert_with_key(|cas| crate::tls::client_config(cas))
            .clone();
        match config.and_then(|c| crate::tls::Upstream::new(&inst.endpoint, &settings, c)) {
            Ok(u) => inst.set_tls(Some(Arc::new(u))),
            Err(e) => {
                // `tls::check` refuses such a config before it gets here; a
                // file that went bad since leaves the instance unusable (its
                // tries fail and it is marked down), never unverified.
                tracing::error!(instance = %url, error = %e, "TLS settings unusable");
                inst.set_tls(None);
            }
        }
    }
}

impl Snapshot {
    /// Builds a snapshot for `config`, keeping the live state and upstream
    /// connection pools of `prev` where they still apply.
    ///
    /// An instance that is new in a rebuild (not at start-up) enters slow
    /// start at `now_ms`, and its call count starts at the minimum of its
    /// pool's other members, so `least_calls` does not flood it.
    pub fn build(config: Arc<Config>, prev: Option<&Snapshot>, now_ms: u64) -> Snapshot {
        let mut instances: HashMap<String, Arc<InstanceState>> = HashMap::new();
        let mut fresh: Vec<Arc<InstanceState>> = vec![];
        let mut pools = vec![];
        let mut index = HashMap::new();
        for (name, pc) in &config.pools {
            let members: Vec<Member> = pc
                .instances
                .iter()
                .map(|ic| {
                    let url = &ic.endpoint.url;
                    let inst = instances
                        .entry(url.clone())
                        .or_insert_with(|| {
                            prev.and_then(|p| p.instances.get(url).cloned())
                                .unwrap_or_else(|| {
                                    let inst = Arc::new(InstanceState::new(ic.endpoint.clone()));
                                    if prev.is_some() {
                                        fresh.push(inst.clone());
                                    }
                                    inst
                                })
                        })
                        .clone();
                    Member {
                        inst,
                        weight: ic.weight,
                        max_concurrent: ic.max_concurrent,
                        priority: ic.priority,
                    }
                })
                .collect();
            let is_fresh = |i: &Arc<InstanceState>| fresh.iter().any(|f| Arc::ptr_eq(f, i));
            let floor = |p: Priority| {
                members
                    .iter()
                    .filter(|m| !is_fresh(&m.inst) && m.priority == p)
                    .map(|m| m.inst.calls.load(Relaxed))
                    .min()
            };
            for m in members.iter().filter(|m| is_fresh(&m.inst)) {
                m.inst.set_up_since(now_ms.max(1));
                if let Some(floor) = floor(m.priority) {
                    m.inst.calls.fetch_max(floor, Relaxed);
                }
            }
            let ids: Vec<(u64, u32)> = members
                .iter()
                .map(|m| (hash_bytes(m.inst.endpoint.url.as_bytes()), m.weight))
                .collect();
            index.insert(name.clone(), pools.len());
            pools.push(Arc::new(PoolRuntime {
                balancer: build(pc.algorithm, &ids),
                cfg: pc.clone(),
                members,
                // The queue survives a reload, so waiters are not stranded.
                waiters: prev
                    .and_then(|p| p.pool(name))
                    .map_or_else(Default::default, |p| p.waiters.clone()),
                // The cache survives a reload that does not change its settings.
                cache: pc.cache.as_ref().map(|c| {
                    prev.and_then(|p| p.pool(name))
                        .and_then(|p| p.cache.clone())
                        .filter(|old| old.config() == c)
                        .unwrap_or_else(|| crate::cache::ResponseCache::new(c.clone()))
                }),
            }));
        }
        // Each instance's queues, gathered in one pass over the pools.
        let mut queues: HashMap<String, Vec<Arc<Waiters>>> = HashMap::new();
        for p in &pools {
            for m in &p.members {
                let q = queues.entry(m.inst.endpoint.url.clone()).or_default();
                if !q.iter().any(|w| Arc::ptr_eq(w, &p.waiters)) {
                    q.push(p.waiters.clone());
                }
            }
        }
        for (url, inst) in &instances {
            inst.waiters
                .store(Arc::new(queues.remove(url).unwrap_or_default()));
        }
        set_upstream_tls(&pools, &instances);
        let mut routes: Vec<RouteEntry> = config
            .routes
            .iter()
            .filter_map(|r| {
                index.get(&r.pool).map(|&pool| RouteEntry {
                    route: r.clone(),
                    pool,
                })
            })
            .collect();
        routes.sort_by(|a, b| {
            b.route
                .path_prefix
                .len()
                .cmp(&a.route.path_prefix.len())
                .then(b.route.host.is_some().cmp(&a.route.host.is_some()))
        });
        Snapshot {
            config,
            routes,
            pools,
            instances,
            index,
        }
    }

    /// The most specific route for a request, by longest path prefix and host.
    /// Where a request goes: the pool, and how many bytes of the path the
    /// route consumes (the forwarded path is the endpoint's path joined with
    /// the rest). The most specific route wins: the longest path prefix,
    /// then a host-bound route before an any-host one. The registry route
    /// (`registry.route_prefix`, e.g. `/infer/`) competes by the same rule:
    /// `/infer/人数统计` goes to the pool of that task type and to the
    /// endpoint URL exactly as registered.
    pub fn route(
        &self,
        host: Option<&str>,
        path: &str,
    ) -> Result<(&Arc<PoolRuntime>, usize), RouteMiss> {
        let host = host.map(strip_port);
        let fixed = self.routes.iter().find(|r| {
            path.starts_with(r.route.path_prefix.as_str())
                && r.route
                    .host
                    .as_deref()
                    .is_none_or(|h| host.is_some_and(|x| x.eq_ignore_ascii_case(h)))
        });
        let reg = &self.config.registry;
        let prefix = reg.route_prefix.as_str();
        if reg.enabled
            && path.starts_with(prefix)
            && fixed.is_none_or(|r| r.route.path_prefix.len() < prefix.len())
        {
            let segment = &path[prefix.len()..];
            let segment = segment.split('/').next().unwrap_or_default();
            let task = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            return match self.pool(&task) {
                Some(p) => Ok((p, path.len())),
                None => Err(RouteMiss::NoService(task.into_owned())),
            };
        }
        let r = fixed.ok_or(RouteMiss::NoRoute)?;
        let skip = if r.route.strip_prefix {
            r.route.path_prefix.len()
        } else {
            0
        };
        Ok((&self.pools[r.pool], skip))
    }

    pub fn pool(&self, name: &str) -> Option<&Arc<PoolRuntime>> {
        self.index.get(name).map(|&i| &self.pools[i])
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(yaml: &str) -> Snapshot {
        let cfg = fulcrum_config::parse(yaml, &|_| None).unwrap();
        Snapshot::build(Arc::new(cfg), None, 0)
    }

    const YAML: &str = r#"
pools:
  a: { instances: [ { endpoint: "http://127.0.0.1:1" } ] }
  b: { instances: [ { endpoint: "http://127.0.0.1:2" }, { endpoint: "http://127.0.0.1:1" } ] }
  c: {}
routes:
  - { path_prefix: /, pool: a }
  - { path_prefix: /api/, pool: b }
  - { path_prefix: /api/, pool: c, host: Special.example }
"#;

    #[tokio::test]
    async fn longest_prefix_then_host_wins() {
        let s = snap(YAML);
        let name =
            |h: Option<&str>, p: &str| s.route(h, p).ok().map(|(pool, _)| pool.cfg.name.clone());
        assert_eq!(name(None, "/x").as_deref(), Some("a"));
        assert_eq!(name(None, "/api/v1").as_deref(), Some("b"));
        assert_eq!(
            name(Some("special.example:8080"), "/api/v1").as_deref(),
            Some("c")
        );
        assert_eq!(name(Some("other"), "/api/v1").as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn an_endpoint_in_two_pools_shares_one_state_and_survives_rebuild() {
        let s = snap(YAML);
        let a = &s.pool("a").unwrap().members[0].inst;
        let b = &s.pool("b").unwrap().members[1].inst;
        assert!(Arc::ptr_eq(a, b));
        assert!(a.try_acquire(None));
        let s2 = Snapshot::build(s.config.clone(), Some(&s), 0);
        assert_eq!(s2.pool("a").unwrap().members[0].inst.in_flight(), 1);
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("a.b"), "a.b");
    }
}
