//! A pool's response cache: the key ([`key`]), RFC 9111's storability
//! rules ([`rules`]) and the byte-bounded, single-flight store with the
//! body tee that fills it ([`store`]).

pub mod key;
pub mod rules;
pub mod store;

pub use key::{key, Key, MAX_KEYED_BODY};
pub use store::{CacheStats, Fill, Lookup, ResponseCache, LOCK_TIMEOUT, X_CACHE};
