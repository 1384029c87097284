//! The one place that builds and swaps the data plane's snapshots.
//!
//! Every change — a registration, an expiry, a reload, an operator's drain
//! — ends in [`Publisher::publish`]: ask every [`Source`] for its part of
//! the [`Desired`] state, build a [`Snapshot`] from it (keeping the live
//! state of known instances), apply the overrides to the new snapshot's
//! instances, swap it in, and align the health probers. Publications are
//! serialised, so an older view can never overwrite a newer one (pingora's
//! background updater, one owner that publishes).

use super::source::{Desired, Source};
use crate::health::HealthChecker;
use fulcrum_dataplane::{Gateway, Snapshot};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub struct Publisher {
    gateway: Arc<Gateway>,
    health: Arc<HealthChecker>,
    sources: RwLock<Vec<Arc<dyn Source>>>,
    /// Held while a snapshot is built and swapped in.
    order: Mutex<()>,
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

    /// Builds a snapshot of the desired state and swaps it in.
    pub fn publish(&self) {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
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
    }
}
