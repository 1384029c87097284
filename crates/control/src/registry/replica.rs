//! The registry as one replica of a fleet (`registry.store: redis`): the
//! hooks the replica link ([`crate::shared`]) uses to mirror local
//! changes out and to bring the shared registrations in.
//!
//! What Redis holds is treated as untrusted input: a record is taken only
//! when the config in force would accept it as a registration here
//! ([`refusal`]), and never over a local change not yet written.

use super::{refusal, Record, Registry};
use crate::mirror::Mirror;
use fulcrum_dataplane::runtime::events::EventKind;
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Whether two records put the same instance in the same pools (what a
/// heartbeat never changes).
fn same_instance(a: &Record, b: &Record) -> bool {
    a.service_id == b.service_id
        && a.name == b.name
        && a.task_types == b.task_types
        && a.version == b.version
        && a.weight == b.weight
        && a.max_concurrent == b.max_concurrent
        && a.priority == b.priority
        && a.health_path == b.health_path
}

impl Registry {
    /// Tells `m` of every local change from now on (once, at start-up).
    pub fn set_mirror(&self, m: Arc<dyn Mirror>) {
        if self.mirror.set(m).is_err() {
            tracing::error!("the registry's mirror was set twice; the first is kept");
        }
    }

    /// While `on`, nothing expires here: the shared store, which holds the
    /// heartbeats of the whole fleet, cannot be read.
    pub fn hold_expiry(&self, on: bool) {
        self.hold.store(on, Relaxed);
    }

    /// The registration of `endpoint`, if held.
    pub fn get(&self, endpoint: &str) -> Option<Record> {
        self.records().get_mut(endpoint).map(|r| r.clone())
    }

    /// Makes the registrations those of the shared store, `remote` (every
    /// record it holds now): adds and replaces what differs, refreshes the
    /// liveness of what is there (its TTL in the store is the fleet's
    /// heartbeat), and removes what is gone from it — unregistered through
    /// another replica, or expired. A local change not yet written is left
    /// as it is. Publishes when anything changed; returns how many changed.
    pub fn apply_shared(&self, remote: Vec<Record>) -> usize {
        let cfg = self.config();
        let pending = |ep: &str| self.mirror.get().is_some_and(|m| m.unwritten(ep));
        let now_ms = self.gateway.clock.now_ms();
        let mut changed = 0;
        {
            let mut recs = self.records();
            let mut seen = HashSet::new();
            for mut r in remote {
                seen.insert(r.endpoint.clone());
                if pending(&r.endpoint) {
                    continue;
                }
                if let Some(why) = refusal(&r, &cfg) {
                    tracing::debug!(endpoint = ?r.endpoint, reason = ?why.to_string(), "a shared registration is not taken here");
                    continue;
                }
                if let Some(l) = recs.get_mut(&r.endpoint) {
                    if same_instance(l, &r) {
                        l.seen_ms = now_ms;
                        l.warned = false;
                        l.last_heartbeat = l.last_heartbeat.max(r.last_heartbeat);
                        if r.stats.is_some() {
                            l.stats = r.stats;
                        }
                        continue;
                    }
                } else if recs.len() >= cfg.registry.max_instances {
                    tracing::warn!(endpoint = ?r.endpoint, "a shared registration is not taken here: registry.max_instances reached");
                    continue;
                }
                r.seen_ms = now_ms;
                r.warned = false;
                if let Ok(bytes) = serde_json::to_vec(&r) {
                    if let Err(e) = self.store.put(&r.endpoint, &bytes) {
                        tracing::warn!(endpoint = ?r.endpoint, error = ?e, "could not keep a shared registration in the local store");
                    }
                }
                self.event(
                    EventKind::Registered,
                    &r.endpoint,
                    &format!(
                        "registered through another replica by service {:?} for {}",
                        r.service_id,
                        r.task_types.join(", ")
                    ),
                );
                recs.insert(r);
                changed += 1;
            }
            let gone: Vec<String> = recs
                .values()
                .filter(|r| !seen.contains(&r.endpoint) && !pending(&r.endpoint))
                .map(|r| r.endpoint.clone())
                .collect();
            for ep in gone {
                recs.remove(&ep);
                if let Err(e) = self.store.delete(&ep) {
                    tracing::warn!(endpoint = ?ep, error = ?e, "could not delete a registration from the local store");
                }
                tracing::info!(endpoint = ?ep, "registration gone from the shared registry");
                self.event(
                    EventKind::Unregistered,
                    &ep,
                    "gone from the shared registry: unregistered through another replica, or expired",
                );
                changed += 1;
            }
        }
        if changed > 0 {
            self.publish();
        }
        changed
    }
}
