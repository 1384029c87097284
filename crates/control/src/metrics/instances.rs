//! Each instance as a member of each pool: load, health, ejections,
//! weights and shares; and each pool's response cache. Read at scrape
//! time from the snapshot and `runtime::stats` (the same numbers as
//! `GET /api/v1/pools`).

use super::encode::{counter, flag, gauge};
use super::sources::Sources;
use super::traffic::labels;
use fulcrum_dataplane::runtime::stats::{self, MemberStats, PoolStats};
use fulcrum_dataplane::runtime::{Member, PoolRuntime};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt::Error;
use std::sync::Arc;

/// The share of the pool's requests `fulcrum_instance_share_ratio`
/// reports: over the recent window (`stats.window`), so that it compares
/// with the expected share, which follows today's weights.
fn share(m: &MemberStats) -> f64 {
    m.window.share
}

#[derive(Debug)]
pub struct Instances(pub Sources);

/// One membership with its live stats.
type Row<'a> = (&'a PoolRuntime, &'a Member, &'a MemberStats);

impl Collector for Instances {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), Error> {
        let gw = &self.0.gateway;
        let snap = gw.snapshot();
        let now = gw.clock.now_ms();
        let pools: &[Arc<PoolRuntime>] = &snap.pools;
        let st: Vec<PoolStats> = stats::pools(&snap, now);
        let rows = || {
            pools.iter().zip(&st).flat_map(|(p, s)| {
                p.members
                    .iter()
                    .zip(&s.instances)
                    .map(move |(m, ms)| -> Row<'_> { (p, m, ms) })
            })
        };
        let g = |enc: &mut DescriptorEncoder<'_>, name, help, f: &dyn Fn(Row<'_>) -> f64| {
            gauge(
                enc,
                name,
                help,
                rows().map(|r| (labels(&r.0.cfg.name, &r.1.inst.endpoint.url), f(r))),
            )
        };
        let c = |enc: &mut DescriptorEncoder<'_>, name, help, f: &dyn Fn(Row<'_>) -> u64| {
            counter(
                enc,
                name,
                help,
                rows().map(|r| (labels(&r.0.cfg.name, &r.1.inst.endpoint.url), f(r))),
            )
        };
        g(
            &mut enc,
            "fulcrum_instance_in_flight",
            "Requests in flight on the instance now (all pools it is in).",
            &|(_, _, s)| f64::from(s.stats.in_flight),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_websockets",
            "WebSockets open through the instance now.",
            &|(_, _, s)| f64::from(s.stats.open_websockets),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_healthy",
            "1 when health probes say the instance is up, else 0.",
            &|(_, _, s)| flag(s.stats.healthy),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_ejected",
            "1 while the instance is passively ejected or cooling down (Retry-After), else 0.",
            &|(_, _, s)| flag(s.stats.ejected),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_drained",
            "1 when an operator drained the instance, else 0.",
            &|(_, _, s)| flag(s.stats.drained),
        )?;
        c(
            &mut enc,
            "fulcrum_instance_ejections",
            "Passive ejections of the instance since start.",
            &|(_, _, s)| s.stats.ejections,
        )?;
        c(
            &mut enc,
            "fulcrum_instance_cooldowns",
            "Cool-downs the instance asked for with Retry-After, since start.",
            &|(_, m, _)| m.inst.cooldowns(),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_weight",
            "The instance's configured weight in the pool.",
            &|(_, m, _)| f64::from(m.weight),
        )?;
        gauge(
            &mut enc,
            "fulcrum_instance_dynamic_weight",
            "The weight dynamic_weights gave the instance in the pool last (0 while it is down); only for pools with dynamic weights, after their first interval.",
            rows().filter_map(|(p, m, s)| {
                let w = s.dynamic_weight?;
                Some((labels(&p.cfg.name, &m.inst.endpoint.url), f64::from(w)))
            }),
        )?;
        gauge(
            &mut enc,
            "fulcrum_instance_max_concurrent",
            "The instance's concurrency limit in the pool now: the configured max_concurrent, or the learned one with max_concurrent: auto; only for members with a limit.",
            rows().filter_map(|(p, m, s)| {
                let l = s.max_concurrent?;
                Some((labels(&p.cfg.name, &m.inst.endpoint.url), f64::from(l)))
            }),
        )?;
        gauge(
            &mut enc,
            "fulcrum_instance_learned_limit",
            "The concurrency limit learned from the instance's latency (max_concurrent: auto); only for members that learn one.",
            rows().filter_map(|(p, m, s)| {
                let l = s.learned_limit?;
                Some((labels(&p.cfg.name, &m.inst.endpoint.url), f64::from(l)))
            }),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_effective_weight",
            "The weight the balancer uses now: the operator's override, else a dynamic weight, else the configured one; then slow start.",
            &|(p, m, _)| f64::from(fulcrum_policy::view::weight(&p.view, m, now)),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_share_ratio",
            "The instance's share of the pool's requests, 0..1.",
            &|(_, _, s)| share(s),
        )?;
        g(
            &mut enc,
            "fulcrum_instance_expected_share_ratio",
            "The share of the pool's requests its effective weight asks for under the pool's algorithm, 0..1.",
            &|(_, _, s)| s.expected_share,
        )?;
        cache(&mut enc, &st)
    }
}

/// The pools with a response cache.
fn cache(enc: &mut DescriptorEncoder<'_>, st: &[PoolStats]) -> Result<(), Error> {
    let cached = || {
        st.iter()
            .filter_map(|p| p.cache.as_ref().map(|c| (p.name.as_str(), c)))
    };
    type Read = fn(&fulcrum_dataplane::cache::CacheStats) -> u64;
    let counters: [(&str, &str, Read); 4] = [
        (
            "fulcrum_cache_hits",
            "Requests answered from the pool's response cache.",
            |c| c.hits,
        ),
        (
            "fulcrum_cache_misses",
            "Cacheable requests the cache could not answer.",
            |c| c.misses,
        ),
        (
            "fulcrum_cache_stores",
            "Responses stored in the cache.",
            |c| c.stores,
        ),
        (
            "fulcrum_cache_evictions",
            "Entries evicted (size or age).",
            |c| c.evictions,
        ),
    ];
    for (name, help, f) in counters {
        counter(
            enc,
            name,
            help,
            cached().map(|(p, c)| ([("pool", p)], f(c))),
        )?;
    }
    gauge(
        enc,
        "fulcrum_cache_bytes",
        "Bytes held by the pool's response cache now.",
        cached().map(|(p, c)| ([("pool", p)], c.bytes as f64)),
    )?;
    gauge(
        enc,
        "fulcrum_cache_entries",
        "Entries in the pool's response cache now.",
        cached().map(|(p, c)| ([("pool", p)], c.entries as f64)),
    )
}
