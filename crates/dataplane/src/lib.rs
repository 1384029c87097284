//! # fulcrum-dataplane — the request path
//!
//! Reads an immutable [`Snapshot`] (published by the control plane through
//! `ArcSwap`) and per-instance atomics; never blocks on the control plane.
//!
//! Dependencies point one way, top to bottom:
//!
//! * [`server`] — the listener (HTTP/1.1 + h2c, limits, graceful drain)
//! * [`proxy`] — one request: route and read-ahead, admission, the attempt
//!   loop, feedback to the instance, the response, WebSocket tunnels
//! * [`observe`] — one record per request, finished when its body ends
//! * [`runtime`] — instance state and atomics, queues, the snapshot, stats
//! * [`cache`] — a pool's response cache (key, RFC 9111 rules, store)
//! * [`upstream`] — reaching instances: connection pools, dialing, sending
//!   one try, classifying its failure
//! * [`http`] — body types, forwarding headers, the gateway's error answers
//! * [`tls`], [`clock`] — TLS settings (rustls), the injected clock and RNG

pub mod cache;
pub mod clock;
pub mod http;
pub mod observe;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod upstream;

pub use clock::Clock;
pub use runtime::stats::{MemberStats, PoolStats};
pub use runtime::{instance, snapshot, Snapshot};

use arc_swap::ArcSwap;
use fulcrum_config::Config;
use std::sync::Arc;

/// The shared state of a running gateway: the current snapshot and the clock.
#[derive(Debug)]
pub struct Gateway {
    snap: ArcSwap<Snapshot>,
    pub clock: Clock,
    /// The random source of balancing decisions (seeded in tests).
    pub rng: clock::Rng,
    /// The proxy listener's TLS settings (replaced by reloads).
    listener_tls: arc_swap::ArcSwapOption<rustls::ServerConfig>,
    /// Where finished request records go (set once; a debug log until then).
    observer: std::sync::OnceLock<Arc<dyn observe::Observer>>,
    /// What happened to the fleet (health flips, ejections, drains, …),
    /// for the dashboard and `GET /api/v1/events`.
    pub events: runtime::events::Events,
}

impl Gateway {
    /// A gateway serving `config` until the control plane publishes (the
    /// control plane's publisher replaces this first snapshot at start-up;
    /// tests of the data plane alone may keep it).
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            snap: ArcSwap::from_pointee(Snapshot::build(Arc::new(config), None, 0)),
            clock: Clock::new(),
            rng: Default::default(),
            listener_tls: Default::default(),
            observer: Default::default(),
            events: Default::default(),
        })
    }

    /// Sends every finished request record to `o` from now on; only the
    /// first call takes effect.
    pub fn set_observer(&self, o: Arc<dyn observe::Observer>) -> bool {
        self.observer.set(o).is_ok()
    }

    /// Where finished request records go.
    pub fn observer(&self) -> Arc<dyn observe::Observer> {
        self.observer
            .get_or_init(|| Arc::new(observe::LogObserver))
            .clone()
    }

    /// The proxy listener's TLS settings in force.
    pub fn listener_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.listener_tls.load_full()
    }

    /// Replaces the proxy listener's TLS settings (new connections use them).
    pub fn set_listener_tls(&self, tls: Option<Arc<rustls::ServerConfig>>) {
        self.listener_tls.store(tls);
    }

    /// The snapshot in force now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snap.load_full()
    }

    /// Swaps in `next` (built by the control plane's publisher, the only
    /// caller); requests in flight finish on the snapshot they started with.
    pub fn publish(&self, next: Snapshot) {
        self.snap.store(Arc::new(next));
    }

    /// Live statistics of every pool and instance (see [`runtime::stats`]).
    pub fn stats(&self) -> Vec<PoolStats> {
        runtime::stats::pools(&self.snapshot(), self.clock.now_ms())
    }
}
