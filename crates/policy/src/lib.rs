//! # fulcrum-policy — the balancing policy, as pure code
//!
//! Everything in this crate decides; nothing in it does I/O. Each function
//! takes a snapshot of instance state plus whatever randomness or time it
//! needs as arguments, so the same code runs in the proxy, in unit and
//! property tests, and in a simulator without sockets.
//!
//! * [`algorithms`] — one file per balancing algorithm behind the
//!   [`Balancer`] trait: `round_robin`, `weighted_round_robin`,
//!   `least_connections`, `least_calls`, `response_time`, `resource_based`,
//!   `random`, `power_of_two`, `consistent_hash`.
//! * [`ewma`] — the peak-EWMA latency estimate behind `response_time`.
//! * [`estimate`] — the estimates an instance carries (latency, error rate)
//!   and how they are updated, the load-report lifetime: every estimator
//!   constant, defined once.
//! * [`slow_start`] — the weight ramp of an instance entering service.
//! * [`dynamic_weight`] — `dynamic_weights:`: each instance's weight moved
//!   every interval toward what its measurements say (the seed's score,
//!   an integral controller with Rprop steps, so it settles).
//! * [`view`] — the one place that turns a pool's members ([`facts`]:
//!   weights, health, drain, ejection, load, estimates) into the slots the
//!   selector sees, and chooses (with panic mode); the data plane and the
//!   simulator both decide through it.
//! * [`select`](mod@select) — eligibility and priority tiers around an algorithm: which
//!   instances may be chosen at all, and what to answer when none may.
//! * [`health`] — the active-probe hysteresis (failure / recovery thresholds).
//! * [`passive`] — passive outlier ejection (`max_fails` within
//!   `fail_timeout`, growing on repeat ejections).
//! * [`retry`] — the retry decision: which failures may be retried, how often,
//!   for which methods.
//! * [`rng`] — the injectable random source.
//! * [`candidate`], [`priority`], [`slot`] — the plain types the pieces
//!   above share: what an algorithm sees of an instance, its tier, and the
//!   selector's view of it.
//! * [`request_class`] — a request's class in the admission queue
//!   (`interactive`, `normal`, `batch`; not an instance's tier).
//!
//! This file only declares the modules and re-exports the names other
//! crates use; no module imports it.

pub mod algorithms;
pub mod candidate;
pub mod concurrency_limit;
pub mod dynamic_weight;
pub mod estimate;
pub mod ewma;
pub mod facts;
pub mod health;
pub mod passive;
pub mod priority;
pub mod reason;
pub mod request_class;
pub mod retry;
pub mod rng;
pub mod select;
pub mod slot;
pub mod slow_start;
pub mod view;

pub use algorithms::registry::{build, Algorithm};
pub use algorithms::{hash_bytes, rejoin_floor};
pub use candidate::{Balancer, Candidate, Inputs, PickContext};
pub use estimate::Estimates;
pub use facts::{Facts, InstanceFacts, Load};
pub use priority::Priority;
pub use reason::PickReason;
pub use request_class::RequestClass;
pub use rng::RandomSource;
pub use select::{select, SelectOutcome};
pub use slot::Slot;
pub use view::{Change, Choice, PoolView, Scratch};
