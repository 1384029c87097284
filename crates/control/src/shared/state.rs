//! What the replica link holds: the parts it mirrors, the local changes
//! not yet written to Redis, and its status for `/metrics`.

use super::keys::Keys;
use crate::mirror::Mirror;
use crate::publish::{Overrides, Publisher};
use crate::registry::Registry;
use fulcrum_dataplane::Gateway;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The link's view of Redis (`fulcrum_redis_up`,
/// `fulcrum_redis_outages_total`).
#[derive(Debug, Default)]
pub struct Status {
    up: AtomicBool,
    outages: AtomicU64,
}

impl Status {
    pub fn up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Times Redis was lost since start.
    pub fn outages(&self) -> u64 {
        self.outages.load(Relaxed)
    }

    /// Redis answered (after being lost or at start-up).
    pub(super) fn set_up(&self) {
        self.up.store(true, Relaxed);
    }

    /// Redis stopped answering; returns whether it was up (a new outage).
    pub(super) fn set_down(&self) -> bool {
        let was = self.up.swap(false, Relaxed);
        if was {
            self.outages.fetch_add(1, Relaxed);
        }
        was
    }
}

/// Local changes not yet written to Redis, by endpoint.
#[derive(Debug, Default)]
pub struct Pending {
    pub registrations: HashSet<String>,
    pub heartbeats: HashSet<String>,
    pub overrides: HashSet<String>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.registrations.is_empty() && self.heartbeats.is_empty() && self.overrides.is_empty()
    }

    /// Puts back what a failed write took, under what came meanwhile.
    pub fn merge(&mut self, other: Pending) {
        self.registrations.extend(other.registrations);
        self.heartbeats.extend(other.heartbeats);
        self.overrides.extend(other.overrides);
    }
}

/// One replica's link to the shared store.
pub struct Shared {
    pub url: String,
    pub keys: Keys,
    /// This replica's name in change notices (its own are ignored).
    pub me: String,
    pub registry: Arc<Registry>,
    pub overrides: Arc<Overrides>,
    pub gateway: Arc<Gateway>,
    pub publisher: Arc<Publisher>,
    pub status: Arc<Status>,
    pub(super) pending: Mutex<Pending>,
    /// Rung on every local change: the link writes it at once.
    pub(super) wake: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes every pending change (to write them).
    pub(super) fn take_pending(&self) -> Pending {
        std::mem::take(&mut *self.pending())
    }

    /// The registrations' TTL in Redis: the heartbeat timeout in force.
    pub(super) fn ttl_ms(&self) -> u64 {
        let t = self.registry.config().registry.heartbeat_timeout;
        (t.as_millis().min(u128::from(u64::MAX)) as u64).max(1)
    }
}

impl Mirror for Shared {
    fn registration_changed(&self, endpoint: &str) {
        self.pending().registrations.insert(endpoint.to_string());
        self.wake.notify_one();
    }

    fn heartbeat(&self, endpoint: &str) {
        // Written with the next flush, within link::FLUSH: a TTL is
        // seconds long, and heartbeats need no notice.
        self.pending().heartbeats.insert(endpoint.to_string());
    }

    fn override_changed(&self, endpoint: &str) {
        self.pending().overrides.insert(endpoint.to_string());
        self.wake.notify_one();
    }

    fn unwritten(&self, endpoint: &str) -> bool {
        let p = self.pending();
        p.registrations.contains(endpoint) || p.overrides.contains(endpoint)
    }
}
