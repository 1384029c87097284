//! What the gateway saw of each request: one [`record::Record`] per
//! request, finished when its response body ends or is dropped, handed to
//! an [`record::Observer`].

pub mod record;

pub use record::{
    CacheStatus, Fanout, LogObserver, Observer, Outcome, Pending, Record, UpstreamTimes,
};
