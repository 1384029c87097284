//! What the registry and the overrides tell a mirror of themselves (the
//! Redis replica link, [`crate::shared`]) and what it hands back to them:
//! a leaf both sides import, so neither imports the other.
//!
//! The registry and the overrides call [`Mirror`] under their own lock,
//! right after a change: the mirror only notes the key and wakes its task,
//! so a registration never waits on the network.

use std::collections::HashMap;
use std::sync::Mutex;

/// Told of every local change to write to the shared store.
pub trait Mirror: Send + Sync {
    /// A registration was added, replaced or removed here.
    fn registration_changed(&self, endpoint: &str);
    /// A heartbeat arrived here for this registration.
    fn heartbeat(&self, endpoint: &str);
    /// An operator override was set or cleared here.
    fn override_changed(&self, endpoint: &str);
    /// Whether a local change to `endpoint` is not yet written: a copy
    /// read from the shared store must not undo it.
    fn unwritten(&self, endpoint: &str) -> bool;
}

/// An instance's fleet-wide counts, as last read from the shared store,
/// with this replica's own counts at that moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fleet {
    pub requests: u64,
    pub failures: u64,
    pub local_requests: u64,
    pub local_failures: u64,
}

/// Fleet-wide request and failure counts by endpoint (with `store:
/// redis`), for the platform-compatible statistics.
#[derive(Debug, Default)]
pub struct FleetCounts(Mutex<HashMap<String, Fleet>>);

impl FleetCounts {
    pub fn set(&self, all: HashMap<String, Fleet>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = all;
    }

    /// The fleet's (requests, failures) of `endpoint` now, given this
    /// replica's own counts now: the last fleet totals plus what this
    /// replica counted since (not yet in them); this replica's own counts
    /// when the fleet's are unknown.
    pub fn now(&self, endpoint: &str, requests: u64, failures: u64) -> (u64, u64) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(endpoint) {
            None => (requests, failures),
            Some(f) => (
                f.requests + requests.saturating_sub(f.local_requests),
                f.failures + failures.saturating_sub(f.local_failures),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_counts_add_what_this_replica_counted_since_the_last_read() {
        let f = FleetCounts::default();
        assert_eq!(f.now("a", 7, 1), (7, 1), "unknown: the local counts");
        f.set(HashMap::from([(
            "a".to_string(),
            Fleet {
                requests: 100,
                failures: 4,
                local_requests: 30,
                local_failures: 1,
            },
        )]));
        assert_eq!(f.now("a", 35, 2), (105, 5));
        assert_eq!(f.now("b", 3, 0), (3, 0));
    }
}
