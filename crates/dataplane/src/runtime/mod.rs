//! The live state the request path reads: per-instance atomics and
//! estimates ([`instance`]), each pool's admission queue ([`queue`]), the
//! immutable [`snapshot`] of pools and routes and how one is [`build`]t,
//! each member's [`dynamic`] weight,
//! per-request [`counters`] for `/metrics`, a member's [`facts`] as the policy's view reads them,
//! latency [`histogram`]s, the fleet's [`events`], the recent [`window`] of each instance's tries,
//! ORCA [`load_report`]s and the [`stats`] views.

pub mod build;
pub mod counters;
pub mod dynamic;
pub mod events;
pub mod facts;
pub mod histogram;
pub mod instance;
pub mod load_report;
pub mod moments;
pub mod queue;
pub mod snapshot;
pub mod stats;
pub mod window;

pub use instance::{InFlightGuard, InstanceState, WebSocketGuard};
pub use queue::Waiters;
pub use snapshot::{Member, PoolRuntime, RouteMiss, Routed, Snapshot};
