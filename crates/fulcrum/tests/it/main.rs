//! Loopback integration tests: the whole gateway in-process on
//! `127.0.0.1:0` in front of the project's own mock inference servers.

// These tests time real sockets and processes (a gateway, mock servers,
// child processes) on the wall clock, which paused time cannot drive; the
// clippy.toml fence on `std::time::Instant` is for the crates' own code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

mod access_log;
mod admin;
mod balancing;
mod cache;
mod cli;
mod compat;
mod compression;
mod connections;
mod console;
mod dashboard;
mod dashboard_browser;
mod demo;
mod dynamic_weights;
mod errors;
mod failover;
mod kill9;
mod learned_limits;
mod limits;
mod logs;
mod metrics;
mod native_admin;
mod observe;
mod openai;
mod packaging;
mod policies;
mod priority_classes;
mod protocol;
mod proxying;
mod redis_replicas;
mod registry;
mod registry_default;
mod registry_scale;
mod registry_security;
mod reload;
mod resilience;
mod signals;
mod stats;
mod tls;
mod watch;
mod websocket;
