//! What the collectors read, and the reload counter the reload path
//! bumps. A leaf of `metrics/`: the collectors and `mod.rs` import it.

use crate::registry::Registry;
use crate::shared::state::Status;
use fulcrum_dataplane::observe::AccessLog;
use fulcrum_dataplane::runtime::counters::PoolCounters;
use fulcrum_dataplane::Gateway;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What the collectors read.
#[derive(Debug, Clone)]
pub struct Sources {
    pub gateway: Arc<Gateway>,
    /// The service registry, when `registry.enabled`.
    pub registry: Option<Arc<Registry>>,
    /// Requests that reached no pool (`observe::Counting::unrouted`).
    pub unrouted: Arc<PoolCounters>,
    /// Config reloads, counted by the reload path.
    pub reloads: Arc<Reloads>,
    /// The access log, unless `access_log.path: off`.
    pub access_log: Option<Arc<AccessLog>>,
    /// The link to Redis, with `registry.store: redis`.
    pub redis: Option<Arc<Status>>,
}

/// Config reloads since start (`SIGHUP`), counted by the reload path.
#[derive(Debug, Default)]
pub struct Reloads {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Reloads {
    /// A reload was applied (`ok`) or refused (the file invalid or its
    /// TLS files unusable; the running config was kept).
    pub fn count(&self, ok: bool) {
        match ok {
            true => &self.ok,
            false => &self.failed,
        }
        .fetch_add(1, Relaxed);
    }

    /// (ok, failed).
    pub fn read(&self) -> (u64, u64) {
        (self.ok.load(Relaxed), self.failed.load(Relaxed))
    }
}
