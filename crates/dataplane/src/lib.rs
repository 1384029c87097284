//! # fulcrum-dataplane — the request path
//!
//! Reads an immutable [`Snapshot`] (published by the control plane through
//! `ArcSwap`) and per-instance atomics; never blocks on the control plane.
//!
//! * [`server`] — the listener (HTTP/1.1 + h2c, limits, graceful drain)
//! * [`proxy`] — route → admission → tries and retries → streamed response
//! * [`admission`] — instance choice via the policy, `max_concurrent`, queue
//! * [`upstream`] — pooled keep-alive client, failure classification
//! * [`body`], [`headers`] — streaming bodies, replay buffer, forwarding headers
//! * [`instance`], [`snapshot`] — live instance state and the runtime snapshot
//! * [`error`] — the one classified error type and its JSON responses

pub mod admission;
pub mod body;
pub mod clock;
pub mod error;
pub mod headers;
pub mod instance;
pub mod load_report;
pub mod proxy;
pub mod server;
pub mod snapshot;
pub mod upstream;

pub use clock::Clock;
pub use snapshot::Snapshot;

use arc_swap::ArcSwap;
use fulcrum_config::Config;
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The shared state of a running gateway: the current snapshot and the clock.
#[derive(Debug)]
pub struct Gateway {
    snap: ArcSwap<Snapshot>,
    pub clock: Clock,
}

impl Gateway {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            snap: ArcSwap::from_pointee(Snapshot::build(Arc::new(config), None, 0)),
            clock: Clock::new(),
        })
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
        self.snap.store(Arc::new(next));
    }

    /// Live statistics of every pool and instance.
    pub fn stats(&self) -> Vec<PoolStats> {
        let snap = self.snapshot();
        let now = self.clock.now_ms();
        snap.pools
            .iter()
            .map(|p| PoolStats {
                name: p.cfg.name.clone(),
                algorithm: p.cfg.algorithm.name(),
                queued: p.waiters.waiting.load(Relaxed),
                instances: p
                    .members
                    .iter()
                    .map(|m| MemberStats {
                        weight: m.weight,
                        max_concurrent: m.max_concurrent,
                        priority: m.priority.name(),
                        stats: m.inst.stats(now),
                    })
                    .collect(),
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
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberStats {
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub priority: &'static str,
    #[serde(flatten)]
    pub stats: instance::InstanceStats,
}
