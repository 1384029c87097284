//! # fulcrum-dataplane — the request path
//!
//! Reads an immutable [`Snapshot`] (published by the control plane through
//! `ArcSwap`) and per-instance atomics; never blocks on the control plane.
//!
//! * [`server`] — the listener (HTTP/1.1 + h2c, limits, graceful drain)
//! * [`proxy`] — route → admission → tries and retries → streamed response
//! * [`admission`] — instance choice via the policy, `max_concurrent`, queue
//! * [`upstream`] — pooled keep-alive client, failure classification
//! * [`cache`] — a pool's response cache (single-flight, LRU by bytes)
//! * [`body`], [`headers`] — streaming bodies, replay buffer, forwarding headers
//! * [`instance`], [`snapshot`] — live instance state and the runtime snapshot
//! * [`tls`] — TLS termination and `https://` instances (rustls)
//! * [`error`] — the one classified error type and its JSON responses

pub mod admission;
pub mod body;
pub mod cache;
pub mod clock;
pub mod error;
pub mod headers;
pub mod histogram;
pub mod instance;
pub mod load_report;
pub mod proxy;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod tunnel;
pub mod upstream;

pub use clock::Clock;
pub use snapshot::Snapshot;

use arc_swap::ArcSwap;
use fulcrum_config::Config;
use fulcrum_policy::Algorithm;
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The shared state of a running gateway: the current snapshot and the clock.
#[derive(Debug)]
pub struct Gateway {
    snap: ArcSwap<Snapshot>,
    pub clock: Clock,
    /// Operator overrides by endpoint, re-applied to every new snapshot.
    overrides: std::sync::Mutex<std::collections::HashMap<String, Override>>,
    /// The proxy listener's TLS settings (replaced by reloads).
    listener_tls: arc_swap::ArcSwapOption<rustls::ServerConfig>,
}

/// What an operator set on an instance through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Override {
    /// Replaces the configured weight in every pool; `None` = configured.
    pub weight: Option<u32>,
    /// No new requests while set (in-flight ones finish).
    pub drained: bool,
}

impl Gateway {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            snap: ArcSwap::from_pointee(Snapshot::build(Arc::new(config), None, 0)),
            clock: Clock::new(),
            overrides: Default::default(),
            listener_tls: Default::default(),
        })
    }

    /// The proxy listener's TLS settings in force.
    pub fn listener_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.listener_tls.load_full()
    }

    /// Replaces the proxy listener's TLS settings (new connections use them).
    pub fn set_listener_tls(&self, tls: Option<Arc<rustls::ServerConfig>>) {
        self.listener_tls.store(tls);
    }

    /// The snapshot in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.load_full()
    }

    /// Publishes a snapshot for `config`, keeping live instance state.
    pub fn apply(&self, config: Config) {
        let next = Snapshot::build(
            Arc::new(config),
            Some(&self.snapshot()),
            self.clock.now_ms(),
        );
        self.apply_overrides(&next);
        self.snap.store(Arc::new(next));
    }

    /// Sets (or, with the default value, clears) the override of `endpoint`.
    pub fn set_override(&self, endpoint: &str, o: Override) {
        {
            let mut map = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
            if o == Override::default() {
                map.remove(endpoint);
            } else {
                map.insert(endpoint.to_string(), o.clone());
            }
        }
        if let Some(inst) = self.snapshot().instances.get(endpoint) {
            inst.set_weight_override(o.weight);
            inst.set_drained(o.drained);
        }
    }

    pub fn overrides(&self) -> std::collections::HashMap<String, Override> {
        self.overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn apply_overrides(&self, snap: &Snapshot) {
        let map = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
        for (ep, o) in map.iter() {
            if let Some(inst) = snap.instances.get(ep) {
                inst.set_weight_override(o.weight);
                inst.set_drained(o.drained);
            }
        }
    }

    /// Live statistics of every pool and instance, with each instance's
    /// share of the pool's requests against the share its weight promises
    /// (equal shares for the algorithms that ignore weights).
    pub fn stats(&self) -> Vec<PoolStats> {
        let snap = self.snapshot();
        let now = self.clock.now_ms();
        snap.pools
            .iter()
            .map(|p| {
                let weighted = matches!(
                    p.cfg.algorithm,
                    Algorithm::WeightedRoundRobin
                        | Algorithm::LeastConnections
                        | Algorithm::Random
                        | Algorithm::PowerOfTwo
                        | Algorithm::ConsistentHash
                );
                let stats: Vec<_> = p.members.iter().map(|m| (m, m.inst.stats(now))).collect();
                let effective = |m: &snapshot::Member| m.inst.weight_override().unwrap_or(m.weight);
                let total_req: u64 = stats.iter().map(|(_, s)| s.requests).sum();
                let total_w: u64 = p.members.iter().map(|m| u64::from(effective(m))).sum();
                let n = p.members.len().max(1) as f64;
                PoolStats {
                    name: p.cfg.name.clone(),
                    algorithm: p.cfg.algorithm.name(),
                    queued: p.waiters.waiting.load(Relaxed),
                    cache: p.cache.as_ref().map(|c| c.stats()),
                    instances: stats
                        .into_iter()
                        .map(|(m, s)| MemberStats {
                            weight: m.weight,
                            effective_weight: effective(m),
                            max_concurrent: m.max_concurrent,
                            priority: m.priority.name(),
                            share: if total_req > 0 {
                                s.requests as f64 / total_req as f64
                            } else {
                                0.0
                            },
                            expected_share: if weighted && total_w > 0 {
                                f64::from(effective(m)) / total_w as f64
                            } else {
                                1.0 / n
                            },
                            stats: s,
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolStats {
    pub name: String,
    pub algorithm: &'static str,
    pub queued: u32,
    pub instances: Vec<MemberStats>,
    /// Response cache counters, when the pool has a cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<cache::CacheStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberStats {
    /// Configured weight.
    pub weight: u32,
    /// The weight in use (an operator's override, if any).
    pub effective_weight: u32,
    /// Share of the pool's requests this instance got.
    pub share: f64,
    /// The share its weight promises under the pool's algorithm.
    pub expected_share: f64,
    pub max_concurrent: Option<u32>,
    pub priority: &'static str,
    #[serde(flatten)]
    pub stats: instance::InstanceStats,
}
