//! The registrations in memory: by endpoint, and — kept up to date with
//! them on every change — each task type's members as ready-made
//! instances. A publication copies those pointers (a short hold of the
//! registry's lock) instead of deriving every pool from every record, and
//! no step is quadratic in a pool's size.

use super::record::Record;
use fulcrum_config::{parse_endpoint, Instance};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(super) struct Registrations {
    by_endpoint: BTreeMap<String, Record>,
    /// Task type → endpoint → the instance its pool gets.
    by_task: BTreeMap<String, BTreeMap<String, Arc<Instance>>>,
}

/// The instance a registration puts in each of its task types' pools;
/// `None` for an endpoint that does not parse (a record stored by an
/// older version), which is not routed.
fn instance(r: &Record) -> Option<Arc<Instance>> {
    let endpoint = parse_endpoint(&r.endpoint).ok()?;
    Some(Arc::new(Instance {
        endpoint,
        weight: r.weight.unwrap_or(1),
        max_concurrent: r.max_concurrent,
        learned_limit: None,
        priority: r
            .priority
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default(),
        // Without a health route, liveness is the heartbeat plus a TCP probe.
        health_path: Some(r.health_path.clone().unwrap_or_else(|| "tcp".into())),
    }))
}

impl Registrations {
    pub(super) fn len(&self) -> usize {
        self.by_endpoint.len()
    }

    pub(super) fn contains_key(&self, endpoint: &str) -> bool {
        self.by_endpoint.contains_key(endpoint)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Record> {
        self.by_endpoint.values()
    }

    /// For liveness and stats only: nothing an instance is built from
    /// (endpoint, task types, weight, limits, priority, health path) may
    /// change through this.
    pub(super) fn get_mut(&mut self, endpoint: &str) -> Option<&mut Record> {
        self.by_endpoint.get_mut(endpoint)
    }

    /// As [`Registrations::get_mut`], for every record.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.by_endpoint.values_mut()
    }

    /// Adds or replaces (same endpoint) a registration.
    pub(super) fn insert(&mut self, r: Record) {
        self.remove(&r.endpoint);
        if let Some(inst) = instance(&r) {
            for t in &r.task_types {
                self.by_task
                    .entry(t.clone())
                    .or_default()
                    .insert(r.endpoint.clone(), inst.clone());
            }
        }
        self.by_endpoint.insert(r.endpoint.clone(), r);
    }

    pub(super) fn remove(&mut self, endpoint: &str) -> Option<Record> {
        let r = self.by_endpoint.remove(endpoint)?;
        for t in &r.task_types {
            if let Some(m) = self.by_task.get_mut(t) {
                m.remove(endpoint);
                if m.is_empty() {
                    self.by_task.remove(t);
                }
            }
        }
        Some(r)
    }

    pub(super) fn clear(&mut self) {
        self.by_endpoint.clear();
        self.by_task.clear();
    }

    /// Each task type with its members, in endpoint order: pointers only.
    pub(super) fn members(&self) -> Vec<(String, Vec<Arc<Instance>>)> {
        self.by_task
            .iter()
            .map(|(t, m)| (t.clone(), m.values().cloned().collect()))
            .collect()
    }
}

impl FromIterator<Record> for Registrations {
    fn from_iter<I: IntoIterator<Item = Record>>(iter: I) -> Self {
        let mut r = Registrations::default();
        for rec in iter {
            r.insert(rec);
        }
        r
    }
}
