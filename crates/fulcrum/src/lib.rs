//! # fulcrum — the binary's wiring
//!
//! [`app::start`] binds the proxy and admin listeners, starts the health
//! checker and serves until shut down; `main.rs` is only the command line
//! around it. Integration tests start the gateway through [`app::start`] on
//! `127.0.0.1:0`.

pub mod app;
pub mod logging;
pub mod reload;
pub mod tls;
