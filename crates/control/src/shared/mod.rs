//! `registry.store: redis`: several gateways, one fleet. Each replica
//! keeps its own registry, overrides and counters — the request path
//! reads only those — and one background task per replica ([`link`])
//! mirrors them through Redis:
//!
//! * **registrations** ([`keys`]: one key per endpoint, JSON, with the
//!   heartbeat timeout as its TTL): a local register, unregister or
//!   heartbeat is written at once (SET … PX, DEL, PEXPIRE), and a notice
//!   on a pub/sub channel makes every other replica read the whole set
//!   again ([`sync`]); a full read every [`link::RESYNC`] repairs what a
//!   notice missed and sees the keys Redis expired.
//! * **operator overrides** (drain, enable, weight): one hash, same way.
//! * **instances kept out** (passive ejection, `Retry-After`): a deadline
//!   per endpoint, shared with the counts' round trip ([`counters`]).
//! * **call counts** ([`counters`]): each replica adds what it counted to
//!   a hash every [`link::FLUSH`] (HINCRBY) and takes the fleet's totals
//!   back into the members' `calls`, so `least_calls` balances the fleet.
//!
//! When Redis is slow or gone the replica serves on from what it knows,
//! takes registrations locally, expires nothing, and reconnects with
//! backoff; on reconnect it writes what changed meanwhile and re-writes
//! every registration and override it knows that Redis lacks (a Redis
//! that came back empty is refilled). See docs/REPLICAS.md.

pub mod counters;
pub mod keys;
pub mod link;
pub mod state;
pub mod sync;

pub use link::start;
pub use state::Shared;
