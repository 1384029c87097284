//! The algorithms a pool can name with `algorithm:` ([`Algorithm`]), which
//! live measurements each reads ([`Algorithm::inputs`]), and [`build`],
//! which makes the [`Balancer`] for a pool.
//!
//! The one file that knows every algorithm: config parsing, the data plane
//! and the simulator go through it, the algorithm files never do.

use super::consistent_hash::ConsistentHash;
use super::least_calls::LeastCalls;
use super::least_connections::LeastConnections;
use super::power_of_two::PowerOfTwo;
use super::random::WeightedRandom;
use super::resource_based::ResourceBased;
use super::response_time::ResponseTime;
use super::round_robin::RoundRobin;
use super::weighted_round_robin::SmoothWeightedRoundRobin;
use crate::candidate::{Balancer, Inputs};
use std::fmt;
use std::str::FromStr;

/// The algorithms a pool can name with `algorithm:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    LeastCalls,
    ResponseTime,
    ResourceBased,
    Random,
    PowerOfTwo,
    ConsistentHash,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RoundRobin,
        Algorithm::WeightedRoundRobin,
        Algorithm::LeastConnections,
        Algorithm::LeastCalls,
        Algorithm::ResponseTime,
        Algorithm::ResourceBased,
        Algorithm::Random,
        Algorithm::PowerOfTwo,
        Algorithm::ConsistentHash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::WeightedRoundRobin => "weighted_round_robin",
            Algorithm::LeastConnections => "least_connections",
            Algorithm::LeastCalls => "least_calls",
            Algorithm::ResponseTime => "response_time",
            Algorithm::ResourceBased => "resource_based",
            Algorithm::Random => "random",
            Algorithm::PowerOfTwo => "power_of_two",
            Algorithm::ConsistentHash => "consistent_hash",
        }
    }

    pub fn inputs(self) -> Inputs {
        match self {
            Algorithm::LeastCalls => Inputs {
                calls: true,
                ..Inputs::default()
            },
            Algorithm::ResponseTime => Inputs {
                latency: true,
                ..Inputs::default()
            },
            Algorithm::ResourceBased => Inputs {
                latency: true,
                resources: true,
                ..Inputs::default()
            },
            _ => Inputs::default(),
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
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown algorithm `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// Builds the balancer for a pool; `members[slot] = (stable id, weight)`,
/// the id being a hash of the instance's endpoint (see
/// [`super::consistent_hash::hash_bytes`]).
pub fn build(alg: Algorithm, members: &[(u64, u32)]) -> Box<dyn Balancer> {
    match alg {
        Algorithm::RoundRobin => Box::new(RoundRobin::default()),
        Algorithm::WeightedRoundRobin => Box::new(SmoothWeightedRoundRobin::new(members.len())),
        Algorithm::LeastConnections => Box::new(LeastConnections::default()),
        Algorithm::LeastCalls => Box::new(LeastCalls::default()),
        Algorithm::ResponseTime => Box::new(ResponseTime),
        Algorithm::ResourceBased => Box::new(ResourceBased),
        Algorithm::Random => Box::new(WeightedRandom),
        Algorithm::PowerOfTwo => Box::new(PowerOfTwo),
        Algorithm::ConsistentHash => Box::new(ConsistentHash::new(members)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>().unwrap(), alg);
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "fastest".parse::<Algorithm>().unwrap_err();
        assert!(
            err.contains("fastest") && err.contains("consistent_hash"),
            "{err}"
        );
    }
}
