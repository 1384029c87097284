//! A pool's response cache: the key ([`key`]), RFC 9111's storability
//! rules ([`rules`]), the byte-bounded, single-flight [`store`], and the
//! body [`tee`] that keeps a copy of an answer to store it.

pub mod key;
pub mod rules;
pub mod store;
pub mod tee;

pub use key::{key, Key, MAX_KEYED_BODY};
pub use store::{CacheStats, Fill, Lookup, ResponseCache, LOCK_TIMEOUT, X_CACHE};
