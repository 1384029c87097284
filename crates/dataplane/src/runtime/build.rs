//! Building a [`Snapshot`] from a config, keeping the live state of the
//! instances, queues and caches of the previous one.

use super::instance::InstanceState;
use super::queue::Waiters;
use super::snapshot::{Member, PoolRuntime, RouteEntry, Snapshot};
use crate::cache::ResponseCache;
use fulcrum_config::{Config, Limit};
use fulcrum_policy::algorithms::MAX_RING_WEIGHT;
use fulcrum_policy::{build, hash_bytes, PoolView, Priority};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

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
            Ok(u) => inst.origin.set_tls(Some(Arc::new(u))),
            Err(e) => {
                // `tls::check` refuses such a config before it gets here; a
                // file that went bad since leaves the instance unusable (its
                // tries fail and it is marked down), never unverified.
                tracing::error!(instance = %url, error = %e, "TLS settings unusable");
                inst.origin.set_tls(None);
            }
        }
    }
}

/// The weights a balancer is built with (`consistent_hash`'s ring): the
/// configured ones, or, where `dynamic_weights:` has given any, those,
/// scaled so that the largest is `MAX_RING_WEIGHT` (the ring's own
/// ceiling, which dynamic weights of up to `max` would all reach).
fn ring_weights(members: &[Member]) -> Vec<u32> {
    let dynamic: Vec<Option<u32>> = members.iter().map(|m| m.dynamic_weight.get()).collect();
    let top = dynamic.iter().flatten().copied().max().unwrap_or(0);
    if top == 0 {
        return members.iter().map(|m| m.weight).collect();
    }
    members
        .iter()
        .zip(dynamic)
        .map(|(m, d)| {
            let w = u64::from(d.unwrap_or(m.weight)) * u64::from(MAX_RING_WEIGHT);
            w.div_ceil(u64::from(top))
                .clamp(1, u64::from(MAX_RING_WEIGHT)) as u32
        })
        .collect()
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
        // Instances created by this build (by address), when it is a rebuild.
        let mut fresh: HashSet<*const InstanceState> = HashSet::new();
        let mut pools = vec![];
        let mut index = HashMap::new();
        let mut first_member = HashMap::new();
        for (name, pc) in &config.pools {
            let prev_pool = prev.and_then(|p| p.pool(name));
            // The previous members, by endpoint: their counters go on
            // counting, and their dynamic weights hold while the pool keeps
            // dynamic weights on.
            let prev_members: HashMap<&str, &Member> = prev_pool
                .map(|p| {
                    p.members
                        .iter()
                        .map(|m| (m.inst.endpoint.url.as_str(), m))
                        .collect()
                })
                .unwrap_or_default();
            let members: Vec<Member> = pc
                .instances
                .iter()
                .enumerate()
                .map(|(at, ic)| {
                    let url = &ic.endpoint.url;
                    // A lookup first: most memberships are of instances
                    // already seen, and need no key of their own.
                    let inst = match instances.get(url) {
                        Some(inst) => inst.clone(),
                        None => {
                            let inst = prev
                                .and_then(|p| p.instances.get(url).cloned())
                                .unwrap_or_else(|| {
                                    let inst = Arc::new(InstanceState::new(ic.endpoint.clone()));
                                    if prev.is_some() {
                                        fresh.insert(Arc::as_ptr(&inst));
                                    }
                                    inst
                                });
                            instances.insert(url.clone(), inst.clone());
                            first_member.insert(url.clone(), (pools.len(), at));
                            inst
                        }
                    };
                    let prev = prev_members.get(url.as_str());
                    let (max_concurrent, learn) = match pc.limit_of(ic) {
                        Some(Limit::Fixed(n)) => (Some(n), None),
                        Some(Limit::Learned(b)) => (None, Some(b)),
                        None => (None, None),
                    };
                    Member {
                        inst,
                        weight: ic.weight,
                        max_concurrent,
                        learn,
                        priority: ic.priority,
                        counters: prev.map_or_else(Default::default, |m| m.counters.clone()),
                        dynamic_weight: prev
                            .filter(|_| pc.dynamic_weights.is_some())
                            .map_or_else(Default::default, |m| m.dynamic_weight.clone()),
                    }
                })
                .collect();
            let is_fresh = |i: &Arc<InstanceState>| fresh.contains(&Arc::as_ptr(i));
            // Each priority tier's least call count among the members that
            // were already there: one pass, not one per newcomer.
            let mut floors: HashMap<Priority, u64> = HashMap::new();
            for m in members.iter().filter(|m| !is_fresh(&m.inst)) {
                let calls = m.inst.calls.load(Relaxed);
                floors
                    .entry(m.priority)
                    .and_modify(|f| *f = (*f).min(calls))
                    .or_insert(calls);
            }
            for m in members.iter().filter(|m| is_fresh(&m.inst)) {
                m.inst.set_up_since(now_ms.max(1));
                if let Some(floor) = floors.get(&m.priority) {
                    m.inst.calls.fetch_max(*floor, Relaxed);
                }
            }
            let ids: Vec<(u64, u32)> = members
                .iter()
                .zip(ring_weights(&members))
                .map(|(m, w)| (hash_bytes(m.inst.endpoint.url.as_bytes()), w))
                .collect();
            index.insert(name.clone(), pools.len());
            pools.push(Arc::new(PoolRuntime {
                balancer: build(pc.algorithm, &ids),
                view: PoolView::new(
                    pc.algorithm.inputs(),
                    pc.slow_start.as_millis() as u64,
                    pc.panic,
                ),
                cfg: pc.clone(),
                members,
                // The queue survives a reload, so waiters are not stranded.
                waiters: prev_pool.map_or_else(Default::default, |p| p.waiters.clone()),
                // So do its counters, so `/metrics` counts on.
                counters: prev_pool.map_or_else(Default::default, |p| p.counters.clone()),
                // The cache survives a reload that does not change its settings.
                cache: pc.cache.as_ref().map(|c| {
                    prev_pool
                        .and_then(|p| p.cache.clone())
                        .filter(|old| old.config() == c)
                        .unwrap_or_else(|| ResponseCache::new(c.clone()))
                }),
            }));
        }
        // Each instance's queues, gathered in one pass over the pools.
        let mut queues: HashMap<String, Vec<Arc<Waiters>>> = HashMap::new();
        for p in &pools {
            for m in &p.members {
                let url = &m.inst.endpoint.url;
                if !queues.contains_key(url) {
                    queues.insert(url.clone(), vec![]);
                }
                let q = queues.get_mut(url).expect("just inserted");
                if !q.iter().any(|w| Arc::ptr_eq(w, &p.waiters)) {
                    q.push(p.waiters.clone());
                }
            }
        }
        let own = Arc::new(config.own_addrs.clone());
        let window_ms = config.stats.window.as_millis() as u64;
        for (url, inst) in &instances {
            inst.waiters
                .store(Arc::new(queues.remove(url).unwrap_or_default()));
            inst.origin.set_own(&own);
            inst.window.set_window_ms(window_ms);
        }
        set_upstream_tls(&pools, &instances);
        let mut routes: Vec<RouteEntry> = config
            .routes
            .iter()
            .filter_map(|r| {
                index.get(&r.pool).map(|&pool| RouteEntry {
                    route: r.clone(),
                    pool,
                    compression: r.compression.clone().map(Arc::new),
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
            first_member,
        }
    }
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

    #[test]
    fn each_instance_is_found_in_the_first_pool_it_is_in() {
        let s = snap(YAML);
        let at = |url: &str| s.first_member(url).map(|(p, i)| (p.cfg.name.clone(), i));
        assert_eq!(at("http://127.0.0.1:1"), Some(("a".into(), 0)));
        assert_eq!(at("http://127.0.0.1:2"), Some(("b".into(), 0)));
        assert_eq!(at("http://127.0.0.1:3"), None);
    }

    #[tokio::test]
    async fn longest_prefix_then_host_wins() {
        let s = snap(YAML);
        let name = |h: Option<&str>, p: &str| s.route(h, p).ok().map(|r| r.pool.cfg.name.clone());
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
    fn pool_and_member_counters_survive_a_rebuild_that_reorders_members() {
        let s = snap(YAML);
        let b = s.pool("b").unwrap();
        b.counters.refused(fulcrum_policy::RequestClass::Batch, 2);
        b.members[1].counters.tries.fetch_add(5, Relaxed);
        // Pool b now lists its members the other way round.
        let yaml = YAML.replace(
            r#"b: { instances: [ { endpoint: "http://127.0.0.1:2" }, { endpoint: "http://127.0.0.1:1" } ] }"#,
            r#"b: { instances: [ { endpoint: "http://127.0.0.1:1" }, { endpoint: "http://127.0.0.1:2" } ] }"#,
        );
        let cfg = fulcrum_config::parse(&yaml, &|_| None).unwrap();
        let s2 = Snapshot::build(Arc::new(cfg), Some(&s), 0);
        let b2 = s2.pool("b").unwrap();
        assert_eq!(b2.counters.refused_total(2), 1);
        assert_eq!(b2.members[0].inst.endpoint.url, "http://127.0.0.1:1");
        assert_eq!(b2.members[0].counters.tries.load(Relaxed), 5);
        assert_eq!(b2.members[1].counters.tries.load(Relaxed), 0);
        // The same endpoint in another pool counts apart.
        assert_eq!(
            s2.pool("a").unwrap().members[0]
                .counters
                .tries
                .load(Relaxed),
            0
        );
    }

    #[test]
    fn dynamic_weights_survive_a_rebuild_while_on_and_scale_the_ring() {
        let on = r#"
pools:
  h:
    algorithm: consistent_hash
    hash_key: client_ip
    dynamic_weights: {}
    instances: [ { endpoint: "http://127.0.0.1:1" }, { endpoint: "http://127.0.0.1:2" } ]
"#;
        let s = snap(on);
        let h = s.pool("h").unwrap();
        assert_eq!(ring_weights(&h.members), vec![1, 1], "configured");
        h.members[0].dynamic_weight.set(Some(250));
        h.members[1].dynamic_weight.set(Some(1000));
        assert_eq!(ring_weights(&h.members), vec![5, 20], "the largest at 20");
        let s2 = Snapshot::build(s.config.clone(), Some(&s), 0);
        assert_eq!(
            s2.pool("h").unwrap().members[0].dynamic_weight.get(),
            Some(250)
        );
        let off = fulcrum_config::parse(&on.replace("dynamic_weights: {}", ""), &|_| None).unwrap();
        let s3 = Snapshot::build(Arc::new(off), Some(&s2), 0);
        assert_eq!(
            s3.pool("h").unwrap().members[0].dynamic_weight.get(),
            None,
            "turned off"
        );
    }
}
