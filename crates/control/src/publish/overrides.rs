//! Operator overrides as a source: drain and weight by endpoint, set
//! through the admin API, kept in a [`Persist`] table so they survive a
//! restart, and applied to every snapshot the publisher builds.

use super::source::{Desired, Override, Source};
use crate::persist::Persist;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The overrides in force, and where they are kept.
pub struct Overrides {
    map: Mutex<HashMap<String, Override>>,
    store: Option<Arc<dyn Persist>>,
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
        Ok(o)
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
