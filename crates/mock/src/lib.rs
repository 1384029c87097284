//! `fulcrum-mock`: a mock inference server for Fulcrum's integration tests,
//! benchmarks and demo.
//!
//! It behaves like a simple inference backend whose behaviour can be scripted:
//! artificial latency (fixed, uniform or long-tailed), a concurrency capacity
//! beyond which requests queue FIFO like on a GPU, injected 500s, and
//! transport-level failures (hanging, resetting connections, answering
//! non-HTTP garbage). Tests drive it in-process through [`MockServer`]; the
//! `fulcrum-mock` binary exposes the same through flags and the `/__mock/*`
//! admin routes.
//!
//! Routes (every response carries `x-mock-instance: NAME`):
//! * `GET /health` — 200 `{"status":"ok","instance":NAME}` or 503, per the
//!   healthy flag; in `Hang`/`Reset`/`Garbage` mode it fails like the mode.
//! * `GET /fast` — `200 text/plain "ok"`, the cheap path for benchmarks.
//! * `/sse?events=N&interval_ms=M` — `text/event-stream` of N events, then `[DONE]`.
//! * `/echo…` — streams the request body back.
//! * `/__mock/stats`, `/__mock/control`, `/__mock/reset` — see the admin module.
//! * anything else — JSON describing the request (method, path, query,
//!   headers, body size).
//!
//! The hot path takes no lock and logs nothing: settings and counters are atomics.

mod admin;
mod body;
mod config;
mod handler;
mod response;
mod server;
mod state;

pub mod cli;

pub use config::{FailureMode, Latency, MockConfig};
pub use server::MockServer;

/// Counters of one mock instance, as returned by [`MockServer::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MockStats {
    /// Requests received, excluding `/health` and `/__mock/*`.
    pub requests: u64,
    /// Requests being processed now (holding a capacity slot).
    pub in_flight: u64,
    /// High-water mark of `in_flight`.
    pub max_in_flight: u64,
    /// `/health` requests received.
    pub health_checks: u64,
    /// 5xx answers to counted requests (injected errors; not health 503s).
    pub errors: u64,
    /// TCP connections accepted (shows whether callers keep connections alive).
    pub connections: u64,
}
