//! Balancing algorithms behind one interface.
//!
//! An algorithm sees only the instances that [`crate::select`] found
//! eligible (healthy, not ejected, below `max_concurrent`, in the winning
//! priority tier) as a slice of [`Candidate`]s, and returns the position of
//! its choice in that slice. Algorithms that keep state (rotation counters,
//! smooth-WRR current weights, the hash ring) key it by the candidate's
//! stable `slot`, the instance's index in its pool snapshot; a new snapshot
//! builds a new balancer.

use crate::rng::RandomSource;
use crate::select::Priority;
use std::fmt;
use std::str::FromStr;

mod consistent_hash;
mod least_calls;
mod least_connections;
mod power_of_two;
mod random;
mod resource_based;
mod response_time;
mod round_robin;
mod weighted_round_robin;

pub use consistent_hash::{hash_bytes, load_cap, ConsistentHash, LOAD_FACTOR, MIN_LOAD_CAP};
pub use least_calls::{rejoin_floor, LeastCalls};
pub use least_connections::{lighter, LeastConnections};
pub use power_of_two::PowerOfTwo;
pub use random::WeightedRandom;
pub use resource_based::{score, ResourceBased};
pub use response_time::ResponseTime;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::SmoothWeightedRoundRobin;

/// What an algorithm may know of one eligible instance. Fields an
/// algorithm does not use may be left at their defaults (see
/// [`Algorithm::inputs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Stable index of the instance within its pool snapshot.
    pub slot: usize,
    /// Effective weight (after slow start), at least 1.
    pub weight: u32,
    /// Requests (or open streams) currently in flight to the instance.
    pub in_flight: u32,
    /// `None` = unlimited.
    pub max_concurrent: Option<u32>,
    pub priority: Priority,
    /// Calls so far (for `least_calls`).
    pub calls: u64,
    /// Peak-EWMA latency estimate in milliseconds at the time of choice.
    pub latency_ms: f64,
    /// Recent share of failed tries, 0..=1.
    pub error_rate: f64,
    /// Reported CPU utilisation 0..=1, `None` when unknown or stale.
    pub cpu: Option<f64>,
    /// Reported memory utilisation 0..=1, `None` when unknown or stale.
    pub mem: Option<f64>,
}

impl Candidate {
    /// A candidate with only the basics set.
    pub fn new(slot: usize, weight: u32, in_flight: u32) -> Self {
        Self {
            slot,
            weight,
            in_flight,
            max_concurrent: None,
            priority: Priority::Normal,
            calls: 0,
            latency_ms: 0.0,
            error_rate: 0.0,
            cpu: None,
            mem: None,
        }
    }
}

/// Per-request inputs besides the candidates.
pub struct PickContext<'a> {
    pub rng: &'a mut dyn RandomSource,
    /// The request's hash key (`consistent_hash`), if it carries one.
    pub key: Option<u64>,
}

impl<'a> PickContext<'a> {
    pub fn new(rng: &'a mut dyn RandomSource) -> Self {
        Self { rng, key: None }
    }
}

/// A balancing algorithm: picks one of a non-empty slice of candidates.
pub trait Balancer: Send + Sync + fmt::Debug {
    /// Returns an index into `cands`. `cands` is never empty.
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize;
}

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

/// Which live measurements an algorithm reads, so the proxy only gathers those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inputs {
    pub calls: bool,
    pub latency: bool,
    pub resources: bool,
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
/// [`consistent_hash::hash_bytes`]).
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

/// The position of a minimum of `cands` under `less`, scanning from a
/// rotating `offset` so that ties go round instead of always to the first.
pub(crate) fn rotating_min(
    cands: &[Candidate],
    offset: &std::sync::atomic::AtomicUsize,
    less: impl Fn(&Candidate, &Candidate) -> bool,
) -> usize {
    let n = cands.len();
    let start = offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
    let mut best = start;
    for k in 1..n {
        let i = (start + k) % n;
        if less(&cands[i], &cands[best]) {
            best = i;
        }
    }
    best
}

/// Two distinct random positions in `0..n` (n ≥ 2).
pub(crate) fn two_distinct(n: usize, rng: &mut dyn RandomSource) -> (usize, usize) {
    let a = rng.below(n as u64) as usize;
    let mut b = rng.below(n as u64 - 1) as usize;
    if b >= a {
        b += 1;
    }
    (a, b)
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::{Candidate, PickContext};

    pub fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(slot, &weight)| Candidate::new(slot, weight, 0))
            .collect()
    }

    /// Runs `f` with a seeded context.
    pub fn with_ctx<T>(
        seed: u64,
        key: Option<u64>,
        f: impl FnOnce(&mut PickContext<'_>) -> T,
    ) -> T {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ctx = PickContext { rng: &mut rng, key };
        f(&mut ctx)
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

    #[test]
    fn two_distinct_never_repeats() {
        let mut rng = fastrand::Rng::with_seed(5);
        for n in 2..10 {
            for _ in 0..200 {
                let (a, b) = two_distinct(n, &mut rng);
                assert!(a != b && a < n && b < n);
            }
        }
    }
}
