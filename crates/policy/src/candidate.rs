//! What an algorithm sees of one instance ([`Candidate`]), what else it is
//! given per request ([`PickContext`]), the algorithm interface itself
//! ([`Balancer`]), and which live measurements it reads ([`Inputs`]).
//!
//! A leaf shared by the algorithms, the selector ([`crate::select`](mod@crate::select)) and
//! the view (`crate::view`) that fills candidates in; keeping it apart
//! from all three is what lets each depend on it without depending on the
//! others. The shape — algorithms choose among a slice of plain values and
//! never see health — is pingora's and tower's (`Balance` over a ready set).

use crate::priority::Priority;
use crate::reason::PickReason;
use crate::rng::RandomSource;
use std::fmt;

/// What an algorithm may know of one eligible instance. Fields an
/// algorithm does not use may be left at their defaults (see
/// [`Inputs`] and `Algorithm::inputs`).
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

/// Which live measurements an algorithm reads, so the proxy only gathers those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inputs {
    /// [`Candidate::calls`] (and the `least_calls` rejoin floor).
    pub calls: bool,
    /// [`Candidate::latency_ms`] and [`Candidate::error_rate`].
    pub latency: bool,
    /// [`Candidate::cpu`] and [`Candidate::mem`] from load reports.
    pub resources: bool,
}

/// Per-request inputs besides the candidates.
pub struct PickContext<'a> {
    pub rng: &'a mut dyn RandomSource,
    /// The request's hash key (`consistent_hash`), if it carries one.
    pub key: Option<u64>,
    /// Why the pick went where it did: the selector resets it, an
    /// algorithm may say it strayed from its first choice (the data plane
    /// counts it; see [`PickReason`]).
    pub reason: PickReason,
}

impl<'a> PickContext<'a> {
    pub fn new(rng: &'a mut dyn RandomSource) -> Self {
        Self::keyed(rng, None)
    }

    /// A context for a request with hash `key`.
    pub fn keyed(rng: &'a mut dyn RandomSource, key: Option<u64>) -> Self {
        Self {
            rng,
            key,
            reason: PickReason::Algorithm,
        }
    }
}

/// A balancing algorithm: picks one of a non-empty slice of candidates.
pub trait Balancer: Send + Sync + fmt::Debug {
    /// Returns an index into `cands`. `cands` is never empty.
    fn pick(&self, cands: &[Candidate], ctx: &mut PickContext<'_>) -> usize;
}
