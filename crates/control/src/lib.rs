//! # fulcrum-control — the control plane
//!
//! Watches instances and publishes what it learns to the data plane:
//!
//! * [`health`] — active probes per instance, feeding the health flag the
//!   request path reads.
//! * [`admin`] — the admin listener (liveness, readiness, live stats).
//!
//! Configuration loading lives in `fulcrum-config`; snapshots are
//! published through [`fulcrum_dataplane::Gateway::apply`].

pub mod admin;
pub mod health;
pub mod registry;
