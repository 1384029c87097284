//! Requests and what happened to them: by pool, instance and status
//! class; tries, retries by reason, picks by reason; the admission queue
//! by request class;
//! the duration and response-head histograms. Read from the atomics of
//! `runtime::counters` (per pool and per membership, carried over by
//! snapshot rebuilds).
//!
//! A request that reached no pool (no route, or refused while its head or
//! body was read) is counted under `pool="-"`; one of a pool that no
//! instance answered
//! (queue full or timed out, every instance down, a cache hit) under
//! `instance="-"`.

use super::encode::{counter, gauge, histogram};
use super::sources::Sources;
use fulcrum_dataplane::runtime::counters::{read, CLASSES, QUEUE_REJECTIONS, RETRY_REASONS};
use fulcrum_dataplane::runtime::PoolRuntime;
use fulcrum_policy::{PickReason, RequestClass};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt::Error;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The label value for "no pool" and "no instance".
pub const NONE: &str = "-";

#[derive(Debug)]
pub struct Traffic(pub Sources);

impl Collector for Traffic {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), Error> {
        let snap = self.0.gateway.snapshot();
        let pools: &[Arc<PoolRuntime>] = &snap.pools;
        let unrouted = &*self.0.unrouted;
        requests(&mut enc, pools, unrouted)?;
        // Histograms: every pool, then the requests no pool took.
        let with_unrouted = || {
            pools
                .iter()
                .map(|p| (p.cfg.name.as_str(), &*p.counters))
                .chain([(NONE, unrouted)])
        };
        histogram(
            &mut enc,
            "fulcrum_request_duration_seconds",
            "Time from a request's arrival to the end of its response, seconds.",
            with_unrouted().map(|(p, c)| ([("pool", p)], c.duration.read())),
        )?;
        histogram(
            &mut enc,
            "fulcrum_response_head_seconds",
            "Time from a request's arrival to its response head, seconds (requests that got one).",
            with_unrouted().map(|(p, c)| ([("pool", p)], c.head.read())),
        )?;
        counter(
            &mut enc,
            "fulcrum_tries",
            "Tries sent to each instance, retries included.",
            members(pools).map(|(p, i, m)| (labels(p, i), m.counters.tries.load(Relaxed))),
        )?;
        counter(
            &mut enc,
            "fulcrum_retries",
            "Tries repeated on another instance, by why the failed one failed.",
            pools.iter().flat_map(|p| {
                let v = read(&p.counters.retries);
                RETRY_REASONS
                    .iter()
                    .zip(v)
                    .map(|(r, n)| ([("pool", p.cfg.name.as_str()), ("reason", *r)], n))
            }),
        )?;
        counter(
            &mut enc,
            "fulcrum_picks",
            "Instances picked (one per try), by why: the algorithm's choice, a tier spill, a hash fallback, a bounded-load skip, a queue hand-off, an ejected fallback, panic mode.",
            pools.iter().flat_map(|p| {
                let v = read(&p.counters.picks);
                PickReason::ALL
                    .iter()
                    .zip(v)
                    .map(|(r, n)| ([("pool", p.cfg.name.as_str()), ("reason", r.name())], n))
            }),
        )?;
        queue(&mut enc, pools)
    }
}

/// `fulcrum_requests_total`: only the non-zero series (a member × 7
/// classes would be most of the scrape for large registries).
fn requests(
    enc: &mut DescriptorEncoder<'_>,
    pools: &[Arc<PoolRuntime>],
    unrouted: &fulcrum_dataplane::runtime::counters::PoolCounters,
) -> Result<(), Error> {
    let by_member = members(pools).flat_map(|(p, i, m)| {
        let v = read(&m.counters.requests);
        CLASSES
            .iter()
            .zip(v)
            .map(move |(c, n)| ([("pool", p), ("instance", i), ("class", *c)], n))
    });
    let by_pool = pools
        .iter()
        .map(|p| (p.cfg.name.as_str(), &*p.counters))
        .chain([(NONE, unrouted)])
        .flat_map(|(p, c)| {
            let v = read(&c.unserved);
            CLASSES
                .iter()
                .zip(v)
                .map(move |(c, n)| ([("pool", p), ("instance", NONE), ("class", *c)], n))
        });
    counter(
        enc,
        "fulcrum_requests",
        "Requests finished, by pool, instance that answered (or was tried last; - for none) and status class (none: ended before any status).",
        by_member.chain(by_pool).filter(|(_, n)| *n > 0),
    )
}

/// The admission queue, by pool and request class.
fn queue(enc: &mut DescriptorEncoder<'_>, pools: &[Arc<PoolRuntime>]) -> Result<(), Error> {
    let by_class = || {
        pools.iter().flat_map(|p| {
            RequestClass::ALL.into_iter().map(move |c| {
                (
                    p,
                    c,
                    [("pool", p.cfg.name.as_str()), ("priority", c.name())],
                )
            })
        })
    };
    gauge(
        enc,
        "fulcrum_queue_length",
        "Requests waiting in the pool's admission queue now, by request class (`priority`).",
        by_class().map(|(p, c, l)| (l, f64::from(p.waiters.by_class[c.index()].load(Relaxed)))),
    )?;
    histogram(
        enc,
        "fulcrum_queue_wait_seconds",
        "Time requests waited in the pool's admission queue, seconds, however the wait ended, by request class (`priority`).",
        by_class().map(|(p, c, l)| (l, p.counters.queue_wait[c.index()].read())),
    )?;
    counter(
        enc,
        "fulcrum_queue_rejections",
        "Requests refused by the admission queue, by request class and why: full, its timeout passed, or shed (a batch request whose place went to a higher class).",
        by_class().flat_map(|(p, c, [pool, class])| {
            let v = read(&p.counters.queue_rejections[c.index()]);
            QUEUE_REJECTIONS
                .iter()
                .zip(v)
                .map(move |(r, n)| ([pool, class, ("reason", *r)], n))
        }),
    )
}

/// Every membership: (pool, endpoint, member).
pub fn members(
    pools: &[Arc<PoolRuntime>],
) -> impl Iterator<Item = (&str, &str, &fulcrum_dataplane::runtime::Member)> {
    pools.iter().flat_map(|p| {
        p.members
            .iter()
            .map(move |m| (p.cfg.name.as_str(), m.inst.endpoint.url.as_str(), m))
    })
}

/// `{pool, instance}`.
pub fn labels<'a>(pool: &'a str, instance: &'a str) -> [(&'static str, &'a str); 2] {
    [("pool", pool), ("instance", instance)]
}
