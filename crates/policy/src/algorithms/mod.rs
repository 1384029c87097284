//! Balancing algorithms behind one interface.
//!
//! An algorithm sees only the instances that [`crate::select`] found
//! eligible (healthy, not ejected, below `max_concurrent`, in the winning
//! priority tier) as a slice of [`Candidate`]s, and returns the position of
//! its choice in that slice. Algorithms that keep state (rotation counters,
//! smooth-WRR current weights) key it by the candidate's stable `slot`, the
//! instance's index in its pool snapshot; a new snapshot builds a new
//! balancer.

use crate::rng::RandomSource;
use std::fmt;
use std::str::FromStr;

mod least_connections;
mod round_robin;
mod weighted_round_robin;

pub use least_connections::LeastConnections;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::SmoothWeightedRoundRobin;

/// What an algorithm may know of one eligible instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Stable index of the instance within its pool snapshot.
    pub slot: usize,
    /// Effective weight, at least 1.
    pub weight: u32,
    /// Requests (or open streams) currently in flight to the instance.
    pub in_flight: u32,
}

/// A balancing algorithm: picks one of a non-empty slice of candidates.
pub trait Balancer: Send + Sync + fmt::Debug {
    /// Returns an index into `cands`. `cands` is never empty.
    fn pick(&self, cands: &[Candidate], rng: &mut dyn RandomSource) -> usize;
}

/// The algorithms a pool can name with `algorithm:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
}

impl Algorithm {
    /// Every accepted name, in documentation order.
    pub const NAMES: &'static [&'static str] =
        &["round_robin", "weighted_round_robin", "least_connections"];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::WeightedRoundRobin => "weighted_round_robin",
            Algorithm::LeastConnections => "least_connections",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round_robin" => Ok(Algorithm::RoundRobin),
            "weighted_round_robin" => Ok(Algorithm::WeightedRoundRobin),
            "least_connections" => Ok(Algorithm::LeastConnections),
            other => Err(format!(
                "unknown algorithm `{other}`; expected one of: {}",
                Algorithm::NAMES.join(", ")
            )),
        }
    }
}

/// Builds the balancer for a pool of `slots` instances.
pub fn build(alg: Algorithm, slots: usize) -> Box<dyn Balancer> {
    match alg {
        Algorithm::RoundRobin => Box::new(RoundRobin::default()),
        Algorithm::WeightedRoundRobin => Box::new(SmoothWeightedRoundRobin::new(slots)),
        Algorithm::LeastConnections => Box::new(LeastConnections::default()),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::Candidate;

    pub fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(slot, &weight)| Candidate {
                slot,
                weight,
                in_flight: 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself() {
        for name in Algorithm::NAMES {
            let alg: Algorithm = name.parse().unwrap();
            assert_eq!(alg.name(), *name);
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "fastest".parse::<Algorithm>().unwrap_err();
        assert!(
            err.contains("fastest") && err.contains("least_connections"),
            "{err}"
        );
    }
}
