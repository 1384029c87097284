//! The request path, reading one way: [`handle`] → [`request`] (route,
//! read-ahead, cache lookup) → [`attempt`] (acquire → try → decide, with
//! [`admission`] choosing and holding an instance slot) → [`feedback`]
//! (what a try taught about the instance) → [`response`] (or [`tunnel`]
//! for a WebSocket). It calls down into `runtime`, `upstream`, `cache`,
//! `observe` and `http`, never the reverse.

pub mod admission;
pub mod attempt;
pub mod feedback;
pub mod handle;
pub mod request;
pub mod response;
pub mod tunnel;

pub use handle::handle;
