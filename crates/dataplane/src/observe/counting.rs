//! The metrics observer: counts each finished request into the atomics of
//! its pool and membership ([`crate::runtime::counters`]), which the
//! control plane reads at scrape time for `/metrics`.
//!
//! On the request path, once per request: a few relaxed atomic adds, no
//! lock, no lookup (the record carries its pool and member position), no
//! allocation.

use super::record::{Observer, Record};
use crate::runtime::counters::{class, PoolCounters};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Counts every request: by pool, instance and status class, and into the
/// pool's duration and response-head histograms. Requests no pool took
/// (no route, 404/413 before routing) are counted in [`Self::unrouted`].
#[derive(Debug, Default)]
pub struct Counting {
    /// The counters of requests that reached no pool.
    pub unrouted: Arc<PoolCounters>,
}

impl Observer for Counting {
    fn request_done(&self, r: &Record) {
        let c = class(r.status);
        let pool = r.pool.as_deref();
        let counters = pool.map_or(&*self.unrouted, |p| &*p.counters);
        match (pool, r.member) {
            (Some(p), Some(m)) => p.members[m].counters.requests[c].fetch_add(1, Relaxed),
            _ => counters.unserved[c].fetch_add(1, Relaxed),
        };
        if let Some(total) = r.total {
            counters.duration.observe(total);
        }
        if let Some(head) = r.head_after {
            counters.head.observe(head);
        }
    }
}
