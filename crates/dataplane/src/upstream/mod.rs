//! The client side: reaching instances. [`pool`] holds each instance's
//! address, TLS settings and idle keep-alive connections, [`dial`] opens
//! connections (TCP or TLS), [`send`] sends one try, and [`error`]
//! classifies what went wrong once, for the attempt loop to ask.

pub mod dial;
pub mod error;
pub mod pool;
pub mod send;

pub use error::TryError;
pub use pool::{ConnPool, Origin, Pooled};
pub use send::{send, send_fresh, send_upgrade, Deadlines};
