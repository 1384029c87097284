//! What the gateway saw of each request: one [`record::Record`] per
//! request, finished when its response body ends or is dropped, handed to
//! an [`record::Observer`] — such as the [`access_log`], whose line
//! formats are in [`access_format`].

pub mod access_format;
pub mod access_log;
pub mod record;

pub use access_log::AccessLog;

pub use record::{
    CacheStatus, Fanout, LogObserver, Observer, Outcome, Pending, Record, UpstreamTimes,
};
