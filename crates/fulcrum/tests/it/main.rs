//! Loopback integration tests: the whole gateway in-process on
//! `127.0.0.1:0` in front of the project's own mock inference servers.

mod common;

mod admin;
mod balancing;
mod cache;
mod cli;
mod compat;
mod errors;
mod failover;
mod kill9;
mod limits;
mod native_admin;
mod observe;
mod openai;
mod policies;
mod proxying;
mod registry;
mod resilience;
mod signals;
mod tls;
mod websocket;
