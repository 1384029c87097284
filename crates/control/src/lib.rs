//! # fulcrum-control — the control plane
//!
//! Decides what the data plane serves and watches how it goes:
//!
//! * [`publish`] — the one [`publish::Publisher`] that builds and swaps
//!   snapshots, and its [`publish::Source`]s: the config file, operator
//!   overrides, the [`registry`].
//! * [`registry`] — services that register themselves (the video-analysis
//!   platform's API), a source of instances.
//! * [`persist`] — where what must survive a restart is kept.
//! * [`shared`] — `registry.store: redis`: the link that shares the
//!   registry, the overrides and the call counts with the other replicas
//!   through Redis; [`mirror`] is what the registry and the overrides
//!   tell it.
//! * [`health`] — active probes per instance, feeding the health flag the
//!   request path reads.
//! * [`concurrency_limits`] — the task that learns each instance's
//!   concurrency limit from its latency (`max_concurrent: auto`).
//! * [`dynamic_weights`] — the task that recomputes each member's weight
//!   every interval (`dynamic_weights:`) and stores it where the request
//!   path reads it.
//! * [`admin`] — the admin listener (liveness, readiness, live stats,
//!   operator overrides).
//! * [`dashboard`] — the web page at `/` of the admin listener and the
//!   history of the last 15 minutes it draws.
//! * [`openapi`] — the frame of the admin API's OpenAPI document, which
//!   the handlers' `#[utoipa::path]` and types fill in.

pub mod admin;
pub mod concurrency_limits;
pub mod config_view;
pub mod dashboard;
pub mod dynamic_weights;
pub mod health;
pub mod metrics;
pub mod mirror;
pub mod openapi;
pub mod persist;
pub mod publish;
pub mod registry;
pub mod reload;
pub mod shared;
pub mod version;
