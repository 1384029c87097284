//! [`InstanceFacts`]: what the view ([`crate::view`]) may read of one
//! member of a pool to turn it into a [`crate::Slot`] — its weights, its
//! health, drain, ejection and cool-down, its load, its estimates — and
//! [`Facts`], the same facts as plain values.
//!
//! The caller implements the trait over whatever holds its state: the data
//! plane over the atomics of its `InstanceState` (plus the pool member's
//! configured weight, limit and tier), the simulator over its modelled
//! instances. Each method is one cheap read; the view calls only those the
//! pool's algorithm needs (see [`crate::Inputs`]), so an implementation must
//! not assume every method is called. Nothing here decides anything: the
//! rules that combine the facts are in [`crate::view`], [`crate::slow_start`]
//! and [`crate::estimate`], once.
//!
//! The split — state owned by the caller, behind a narrow read-only
//! interface, decisions in pure functions — is the one pingora and Envoy's
//! load balancers use between host state and the balancing policy.

use crate::estimate::Estimates;
use crate::priority::Priority;

/// The last load report of an instance (ORCA `endpoint-load-metrics`) and
/// when it arrived; the view decides whether it is still fresh.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// CPU utilisation 0..=1, if reported.
    pub cpu: Option<f64>,
    /// Memory utilisation 0..=1, if reported.
    pub mem: Option<f64>,
    /// Clock ms at which the report arrived.
    pub at_ms: u64,
}

/// What the view reads of one pool member. Times are the caller's clock in
/// milliseconds, the same clock as the `now_ms` given to the view.
pub trait InstanceFacts {
    /// The member's weight in this pool, as configured.
    fn configured_weight(&self) -> u32;
    /// An operator's weight, replacing the configured one in every pool.
    fn weight_override(&self) -> Option<u32>;
    /// The weight `dynamic_weights:` gave the member in this pool
    /// ([`crate::dynamic_weight`]; 0 while it is down); an operator's
    /// override still wins over it.
    fn dynamic_weight(&self) -> Option<u32> {
        None
    }
    /// The result of active probes (after hysteresis).
    fn healthy(&self) -> bool;
    /// Set by an operator: no new requests, even in panic mode.
    fn drained(&self) -> bool;
    /// Until when a passive ejection or a `Retry-After` cool-down keeps the
    /// instance out (0 or a past time = not ejected).
    fn ejected_until_ms(&self) -> u64;
    /// Since when the instance is in service, for slow start (0 = present
    /// since start-up). Read only when the pool has slow start.
    fn up_since_ms(&self) -> u64;
    /// Requests (or open streams) in flight to it now.
    fn in_flight(&self) -> u32;
    /// The member's limit in this pool (`None` = unlimited).
    fn max_concurrent(&self) -> Option<u32>;
    /// The member's tier in this pool.
    fn priority(&self) -> Priority;
    /// Calls so far, for `least_calls`. Read only for algorithms that use it.
    fn calls(&self) -> u64;
    /// The latency and error-rate estimates. Read only for algorithms that
    /// use them, and only for usable instances.
    fn estimates(&self) -> Estimates;
    /// The last load report, stale or not (`None` = never reported). Read
    /// only for algorithms that use it, and only for usable instances.
    fn load(&self) -> Option<Load>;
}

/// An instance's facts as plain values: for tests, for callers whose state
/// is already plain (the simulator could use it), and as the reference an
/// implementation over atomics can be compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    pub configured_weight: u32,
    pub weight_override: Option<u32>,
    pub dynamic_weight: Option<u32>,
    pub healthy: bool,
    pub drained: bool,
    pub ejected_until_ms: u64,
    pub up_since_ms: u64,
    pub in_flight: u32,
    pub max_concurrent: Option<u32>,
    pub priority: Priority,
    pub calls: u64,
    pub estimates: Estimates,
    pub load: Option<Load>,
}

impl Default for Facts {
    /// Weight 1, healthy, idle, unlimited, normal tier, nothing measured.
    fn default() -> Self {
        Self {
            configured_weight: 1,
            weight_override: None,
            dynamic_weight: None,
            healthy: true,
            drained: false,
            ejected_until_ms: 0,
            up_since_ms: 0,
            in_flight: 0,
            max_concurrent: None,
            priority: Priority::Normal,
            calls: 0,
            estimates: Estimates::default(),
            load: None,
        }
    }
}

impl InstanceFacts for Facts {
    fn configured_weight(&self) -> u32 {
        self.configured_weight
    }
    fn weight_override(&self) -> Option<u32> {
        self.weight_override
    }
    fn dynamic_weight(&self) -> Option<u32> {
        self.dynamic_weight
    }
    fn healthy(&self) -> bool {
        self.healthy
    }
    fn drained(&self) -> bool {
        self.drained
    }
    fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms
    }
    fn up_since_ms(&self) -> u64 {
        self.up_since_ms
    }
    fn in_flight(&self) -> u32 {
        self.in_flight
    }
    fn max_concurrent(&self) -> Option<u32> {
        self.max_concurrent
    }
    fn priority(&self) -> Priority {
        self.priority
    }
    fn calls(&self) -> u64 {
        self.calls
    }
    fn estimates(&self) -> Estimates {
        self.estimates
    }
    fn load(&self) -> Option<Load> {
        self.load
    }
}
