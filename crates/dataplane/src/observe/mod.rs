//! What the gateway saw of each request: one [`record::Record`] per
//! request, finished when its response body ends or is dropped, handed to
//! an [`record::Observer`]: [`counting::Counting`] is the one behind
//! `/metrics`, the [`access_log`] another (its line formats are in
//! [`access_format`]).

pub mod access_format;
pub mod access_log;
pub mod counting;
pub mod record;

pub use access_log::AccessLog;
pub use counting::Counting;
pub use record::{
    CacheStatus, Fanout, LogObserver, Observer, Outcome, Pending, Record, UpstreamTimes,
};
