//! Operator overrides as a source: drain and weight by endpoint, set
//! through the admin API, kept in a [`Persist`] table so they survive a
//! restart, and applied to every snapshot the publisher builds.

use super::source::{Desired, Override, Source};
use crate::mirror::Mirror;
use crate::persist::Persist;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The overrides in force, and where they are kept.
pub struct Overrides {
    map: Mutex<HashMap<String, Override>>,
    store: Option<Arc<dyn Persist>>,
    /// With `store: redis`: the replica link, told of every local change.
    mirror: OnceLock<Arc<dyn Mirror>>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides").finish_non_exhaustive()
    }
}

impl Overrides {
    /// Loads the stored overrides (none without a store).
    pub fn open(store: Option<Arc<dyn Persist>>) -> Result<Self, String> {
        let mut map = HashMap::new();
        if let Some(s) = &store {
            for (ep, bytes) in s.load()? {
                let o: Override = serde_json::from_slice(&bytes).map_err(|e| {
                    format!("stored override for {ep} is unreadable ({e}); remove it with the admin API or move the store aside")
                })?;
                map.insert(ep, o);
            }
        }
        Ok(Self {
            map: Mutex::new(map),
            store,
            mirror: OnceLock::new(),
        })
    }

    /// Changes the override of `endpoint` with `f`, stores it (before it
    /// takes effect), and returns it. The caller publishes.
    pub fn update(
        &self,
        endpoint: &str,
        f: impl FnOnce(&mut Override),
    ) -> Result<Override, String> {
        // One change at a time: the read-modify-write of the override and
        // its stored copy must not interleave (a drain and a re-weight).
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = map.get(endpoint).cloned().unwrap_or_default();
        f(&mut o);
        if let Some(s) = &self.store {
            if o == Override::default() {
                s.delete(endpoint)?;
            } else {
                s.put(
                    endpoint,
                    &serde_json::to_vec(&o).map_err(|e| e.to_string())?,
                )?;
            }
        }
        if o == Override::default() {
            map.remove(endpoint);
        } else {
            map.insert(endpoint.to_string(), o.clone());
        }
        if let Some(m) = self.mirror.get() {
            m.override_changed(endpoint);
        }
        Ok(o)
    }

    /// Tells `m` of every local change from now on (once, at start-up).
    pub fn set_mirror(&self, m: Arc<dyn Mirror>) {
        if self.mirror.set(m).is_err() {
            tracing::error!("the overrides' mirror was set twice; the first is kept");
        }
    }

    /// The override of `endpoint` in force, if any.
    pub fn get(&self, endpoint: &str) -> Option<Override> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
            .cloned()
    }

    /// Makes the overrides those of the shared store, `remote`, except
    /// for a local change not yet written there. Returns whether anything
    /// changed (the caller publishes).
    pub fn apply_shared(&self, remote: HashMap<String, Override>) -> bool {
        let pending = |ep: &str| self.mirror.get().is_some_and(|m| m.unwritten(ep));
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let gone: Vec<String> = map
            .keys()
            .filter(|ep| !remote.contains_key(*ep) && !pending(ep))
            .cloned()
            .collect();
        for ep in gone {
            map.remove(&ep);
            self.keep(&ep, None);
            changed = true;
        }
        for (ep, o) in remote {
            if pending(&ep) || map.get(&ep) == Some(&o) || o == Override::default() {
                continue;
            }
            self.keep(&ep, Some(&o));
            map.insert(ep, o);
            changed = true;
        }
        changed
    }

    /// Writes a shared override to the local store too, so a restart
    /// without Redis starts from it.
    fn keep(&self, endpoint: &str, o: Option<&Override>) {
        let Some(s) = &self.store else { return };
        let r = match o {
            None => s.delete(endpoint),
            Some(o) => serde_json::to_vec(o)
                .map_err(|e| e.to_string())
                .and_then(|b| s.put(endpoint, &b)),
        };
        if let Err(e) = r {
            tracing::warn!(endpoint = ?endpoint, error = ?e, "could not keep a shared override in the local store");
        }
    }

    /// Every override in force.
    pub fn all(&self) -> HashMap<String, Override> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Source for Overrides {
    fn contribute(&self, desired: &mut Desired) {
        desired.overrides = self.all();
    }
}
