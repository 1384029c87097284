//! The one place that builds and swaps the data plane's snapshots.
//!
//! Every change — a registration, an expiry, a reload, an operator's drain
//! — ends in [`Publisher::publish`]: ask every [`Source`] for its part of
//! the [`Desired`] state, build a [`Snapshot`] from it (keeping the live
//! state of known instances), apply the overrides to the new snapshot's
//! instances, swap it in, and align the health probers. Publications are
//! serialised, so an older view can never overwrite a newer one (pingora's
//! background updater, one owner that publishes).
//!
//! A publication rebuilds the whole snapshot, so its cost grows with the
//! number of pool memberships. A change that must not pay for that — a
//! registration — calls [`Publisher::publish_soon`]: it publishes at once
//! while a publication is cheap (the last one took less than
//! [`SYNC_BUDGET`]: the change is routed when the call returns), and
//! otherwise wakes one background task that publishes every change made
//! meanwhile in one go, at most once per [`COALESCE`] (or per build time,
//! if longer), on a blocking thread.

use super::source::{Desired, Source};
use crate::health::HealthChecker;
use fulcrum_dataplane::{Gateway, Snapshot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// [`Publisher::publish_soon`] publishes synchronously while the last
/// publication took less than this.
pub const SYNC_BUDGET: Duration = Duration::from_millis(5);
/// Least time between two background publications: changes made within
/// it share one.
pub const COALESCE: Duration = Duration::from_millis(50);

pub struct Publisher {
    gateway: Arc<Gateway>,
    health: Arc<HealthChecker>,
    sources: RwLock<Vec<Arc<dyn Source>>>,
    /// Held while a snapshot is built and swapped in.
    order: Mutex<()>,
    /// How long the last publication took, in µs.
    last_cost_us: AtomicU64,
    /// Wakes the background publisher.
    wake: Arc<Notify>,
    /// Set once the background publisher runs (on the first deferral).
    background: OnceLock<()>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(gateway: Arc<Gateway>, health: Arc<HealthChecker>) -> Arc<Self> {
        Arc::new(Self {
            gateway,
            health,
            sources: RwLock::new(Vec::new()),
            order: Mutex::new(()),
            last_cost_us: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            background: OnceLock::new(),
        })
    }

    /// Adds a source after those already given; it takes part from the
    /// next publication on.
    pub fn add_source(&self, s: Arc<dyn Source>) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    /// The state every source asks for now.
    pub fn desired(&self) -> Desired {
        let mut d = Desired {
            config: fulcrum_config::embedded_default(),
            overrides: HashMap::new(),
        };
        for s in self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            s.contribute(&mut d);
        }
        d
    }

    /// How long the last publication took.
    pub fn last_cost(&self) -> Duration {
        Duration::from_micros(self.last_cost_us.load(Relaxed))
    }

    /// Publishes the change just made: at once when that is cheap (then it
    /// is in force when this returns, and `true` is returned), else within
    /// [`COALESCE`] plus one build, by the background publisher, together
    /// with every other change made meanwhile (`false`).
    pub fn publish_soon(self: &Arc<Self>) -> bool {
        let handle = tokio::runtime::Handle::try_current();
        match handle {
            Ok(h) if self.last_cost() >= SYNC_BUDGET => {
                self.background.get_or_init(|| {
                    h.spawn(background(Arc::downgrade(self), self.wake.clone()));
                });
                self.wake.notify_one();
                false
            }
            _ => {
                self.publish();
                true
            }
        }
    }

    /// Builds a snapshot of the desired state and swaps it in.
    pub fn publish(&self) {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let started = tokio::time::Instant::now();
        let d = self.desired();
        // Live state (in-flight, estimates, health) of every instance that
        // stays is carried over from the snapshot in force.
        let prev = self.gateway.snapshot();
        let snap = Snapshot::build(Arc::new(d.config), Some(&prev), self.gateway.clock.now_ms());
        for (ep, inst) in &snap.instances {
            let o = d.overrides.get(ep).cloned().unwrap_or_default();
            inst.set_weight_override(o.weight);
            inst.set_drained(o.drained);
        }
        self.gateway.publish(snap);
        self.health.sync(&self.gateway);
        let cost = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.last_cost_us.store(cost, Relaxed);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // The background publisher sees the publisher gone and ends.
        self.wake.notify_one();
    }
}

/// The background publisher: one publication per wake-up, after a pause
/// that lets a burst of changes join it.
async fn background(publisher: Weak<Publisher>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(p) = publisher.upgrade() else {
            return;
        };
        let pause = COALESCE.max(p.last_cost());
        drop(p);
        tokio::time::sleep(pause).await;
        let Some(p) = publisher.upgrade() else {
            return;
        };
        if tokio::task::spawn_blocking(move || p.publish())
            .await
            .is_err()
        {
            tracing::error!("a background publication failed");
        }
    }
}
