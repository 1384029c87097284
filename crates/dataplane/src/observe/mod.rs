//! What the gateway saw of each request: one [`record::Record`] per
//! request, finished when its response body ends or is dropped, handed to
//! an [`record::Observer`]; [`counting::Counting`] is the one behind
//! `/metrics`.

pub mod counting;
pub mod record;

pub use counting::Counting;
pub use record::{Fanout, LogObserver, Observer, Outcome, Pending, Record};
