//! Point-in-time views of the pools for the admin plane: each instance's
//! counters, and its share of the pool's requests against the share its
//! weight promises — since start, and over the recent window
//! (`stats.window`, [`super::window`]), so an old incident does not hide
//! how the pool behaves now.

use super::instance::InstanceStats;
use super::snapshot::{Member, PoolRuntime, Snapshot};
use super::window::{rate, WindowStats, WindowSum};
use crate::cache::CacheStats;
use fulcrum_policy::Algorithm;
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

/// Live statistics of every pool and instance, with each instance's
/// share of the pool's requests against the share its weight promises
/// (equal shares for the algorithms that ignore weights).
pub fn pools(snap: &Snapshot, now: u64) -> Vec<PoolStats> {
    snap.pools
        .iter()
        .map(|p| {
            let weighted = matches!(
                p.cfg.algorithm,
                Algorithm::WeightedRoundRobin
                    | Algorithm::LeastConnections
                    | Algorithm::Random
                    | Algorithm::PowerOfTwo
                    | Algorithm::ConsistentHash
            );
            let stats: Vec<_> = p
                .members
                .iter()
                .map(|m| (m, m.inst.stats(now), m.inst.window.stats(now)))
                .collect();
            let effective = |m: &Member| fulcrum_policy::view::base_weight(m);
            let total_req: u64 = stats.iter().map(|(_, s, _)| s.requests).sum();
            let recent_req: u64 = stats.iter().map(|(_, _, w)| w.requests).sum();
            let total_w: u64 = p.members.iter().map(|m| u64::from(effective(m))).sum();
            let n = p.members.len().max(1) as f64;
            let mut sum = WindowSum::default();
            for m in &p.members {
                m.inst.window.add_to(now, &mut sum);
            }
            PoolStats {
                name: p.cfg.name.clone(),
                algorithm: p.cfg.algorithm.name(),
                queued: p.waiters.waiting.load(Relaxed),
                window: sum.stats(),
                cache: p.cache.as_ref().map(|c| c.stats()),
                instances: stats
                    .into_iter()
                    .map(|(m, s, w)| MemberStats {
                        state: state(p, m, &s, now),
                        weight: m.weight,
                        dynamic_weight: m.dynamic_weight.get(),
                        effective_weight: effective(m),
                        max_concurrent: fulcrum_policy::InstanceFacts::max_concurrent(m),
                        learned_limit: m
                            .learn
                            .map(|_| fulcrum_policy::InstanceFacts::max_concurrent(m).unwrap_or(0)),
                        priority: m.priority.name(),
                        share: rate(s.requests, total_req),
                        expected_share: if weighted && total_w > 0 {
                            f64::from(effective(m)) / total_w as f64
                        } else {
                            1.0 / n
                        },
                        window: WindowStats {
                            share: rate(w.requests, recent_req),
                            ..w
                        },
                        stats: s,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What an instance is doing in its pool, most telling first.
fn state(p: &PoolRuntime, m: &Member, s: &InstanceStats, now: u64) -> MemberState {
    if s.drained {
        MemberState::Drained
    } else if !s.healthy {
        MemberState::Down
    } else if s.cooling_down {
        MemberState::CoolingDown
    } else if s.ejected {
        MemberState::Ejected
    } else if fulcrum_policy::view::weight(&p.view, m, now) < fulcrum_policy::view::base_weight(m) {
        MemberState::SlowStart
    } else {
        MemberState::Up
    }
}

/// An instance's state in a pool (`state` in `/api/v1/pools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// In service at its full weight.
    Up,
    /// Active health checks say it is down.
    Down,
    /// An operator drained it.
    Drained,
    /// Ejected after repeated failures (passive health).
    Ejected,
    /// It answered 429/503 with `Retry-After` and is left alone until then.
    CoolingDown,
    /// Back in service, its weight still ramping up (`slow_start`).
    SlowStart,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolStats {
    pub name: String,
    pub algorithm: &'static str,
    pub queued: u32,
    /// The pool's recent window: its members' windows summed (an instance
    /// in several pools counts its tries in each; `share` is 0).
    pub window: WindowStats,
    pub instances: Vec<MemberStats>,
    /// Response cache counters, when the pool has a cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberStats {
    /// Drained, down, cooling down, ejected, slow-starting, or up.
    pub state: MemberState,
    /// Configured weight.
    pub weight: u32,
    /// The weight `dynamic_weights:` gave it last (0 while it is down);
    /// null when the pool has no dynamic weights, or before their first
    /// interval.
    pub dynamic_weight: Option<u32>,
    /// The weight in use: an operator's override, else the dynamic
    /// weight, else the configured one (before slow start).
    pub effective_weight: u32,
    /// Share of the pool's requests this instance got since start.
    pub share: f64,
    /// The share its weight promises under the pool's algorithm, with
    /// today's weights (compare with `window.share`, the recent share).
    pub expected_share: f64,
    /// The recent window: tries, req/s, errors, error rate, p50/p90/p99
    /// time to response head and `share` of the pool's tries in it.
    pub window: WindowStats,
    /// The limit in force: the configured `max_concurrent`, or the learned
    /// one with `max_concurrent: auto`; null for none.
    pub max_concurrent: Option<u32>,
    /// With `max_concurrent: auto`: the limit learned from the instance's
    /// latency (also in `max_concurrent`); null otherwise.
    pub learned_limit: Option<u32>,
    #[schema(schema_with = priority_schema)]
    pub priority: &'static str,
    #[serde(flatten)]
    pub stats: InstanceStats,
}

/// `priority` is one of the tier names.
fn priority_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(fulcrum_policy::Priority::NAMES.iter().copied()))
        .build()
}
