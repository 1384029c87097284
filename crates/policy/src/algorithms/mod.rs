//! Balancing algorithms behind one interface.
//!
//! An algorithm sees only the instances that [`crate::select`](mod@crate::select) found
//! eligible (healthy, not ejected, below `max_concurrent`, in the winning
//! priority tier) as a slice of [`Candidate`]s, and returns the position of
//! its choice in that slice. Algorithms that keep state (rotation counters,
//! smooth-WRR current weights, the hash ring) key it by the candidate's
//! stable `slot`, the instance's index in its pool snapshot; a new snapshot
//! builds a new balancer.
//!
//! This file only declares the algorithm files and re-exports their items;
//! [`registry`] names and builds them, `scan` holds the scans they share.

mod consistent_hash;
mod least_calls;
mod least_connections;
mod power_of_two;
mod random;
pub mod registry;
mod resource_based;
mod response_time;
mod round_robin;
mod scan;
#[cfg(test)]
pub(crate) mod testutil;
mod weighted_round_robin;

pub use crate::candidate::{Balancer, Candidate, Inputs, PickContext};
pub use consistent_hash::{
    hash_bytes, load_cap, ConsistentHash, LOAD_FACTOR, MAX_RING_WEIGHT, MIN_LOAD_CAP,
};
pub use least_calls::{rejoin_floor, LeastCalls};
pub use least_connections::{lighter, LeastConnections};
pub use power_of_two::PowerOfTwo;
pub use random::WeightedRandom;
pub use registry::{build, Algorithm};
pub use resource_based::{score, ResourceBased};
pub use response_time::ResponseTime;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::SmoothWeightedRoundRobin;
