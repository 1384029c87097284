//! Integration tests of the mock server, driven through real sockets.

// These tests time a real server (and its binary) on the wall clock; the
// clippy.toml fence on `std::time::Instant` is for the crates' own code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod binary;
mod client;
mod faults;
mod lifecycle;
mod routes;

use fulcrum_mock::{MockConfig, MockServer};

/// Starts a mock on a free local port.
async fn start(cfg: MockConfig) -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .expect("mock starts")
}

/// A config with the given name and defaults otherwise.
fn named(name: &str) -> MockConfig {
    MockConfig {
        name: name.to_string(),
        ..MockConfig::default()
    }
}
