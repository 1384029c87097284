//! `pools:`: each pool's settings, merged over the global `health_check:`,
//! `passive:`, `timeouts:` and `dynamic_weights:`, and the default pool of
//! registration.

use super::cache::build_cache;
use super::dynamic::{check_dynamic, merge_dynamic};
use super::errors::Errors;
use super::health::{check_health, check_passive, merge_health, merge_passive};
use super::instances::build_instances;
use super::retry::build_retry;
use super::timeouts::{check_timeouts, merge_timeouts};
use super::tls::build_upstream_tls;
use crate::defaults::{
    DEFAULT_ALGORITHM, DEFAULT_PANIC, DEFAULT_POOL_REGISTRATION, DEFAULT_QUEUE_MAX,
    DEFAULT_QUEUE_RESERVE, DEFAULT_QUEUE_TIMEOUT, DEFAULT_SLOW_START,
};
use crate::file::{FileDynamicWeights, FileHealth, FilePassive, FilePool, FileQueue, FileTimeouts};
use crate::model::{HashKey, Limit, Pool, Queue};
use crate::words;
use fulcrum_policy::Algorithm;
use serde_yaml_ng::Value;

/// Pool keys from the product specification that this version does not implement yet.
const NOT_YET_POOL: &[&str] = &[];

/// The global sections every pool's settings are merged over.
pub(super) struct Globals<'a> {
    pub(super) health: &'a FileHealth,
    pub(super) passive: &'a FilePassive,
    pub(super) timeouts: &'a FileTimeouts,
    pub(super) dynamic: Option<&'a FileDynamicWeights>,
}

impl Globals<'_> {
    /// Checks the global sections once, at their own paths (a pool that
    /// inherits a bad value does not report it again).
    pub(super) fn check(&self, errs: &mut Errors) {
        check_health(self.health, "health_check", errs);
        check_passive(self.passive, "passive", errs);
        check_timeouts(self.timeouts, "timeouts", false, errs);
        if let Some(d) = self.dynamic {
            check_dynamic(d, "dynamic_weights", errs);
        }
    }
}

/// Reads `pools:`, each pool on its own, by name.
pub(super) fn read_pools(v: Value, errs: &mut Errors) -> Vec<(String, FilePool)> {
    let mut pools = vec![];
    match v {
        Value::Mapping(m) => {
            for (name, pool) in m {
                let Some(name) = name.as_str().map(str::to_owned) else {
                    errs.push(
                        "pools",
                        format!("pool names must be text, found {}", words::describe(&name)),
                    );
                    continue;
                };
                let path = format!("pools.{name}");
                if let Value::Mapping(pm) = &pool {
                    for k in NOT_YET_POOL {
                        if pm.contains_key(*k) {
                            errs.push_key(
                                &format!("{path}.{k}"),
                                "not supported by this version of fulcrum yet".into(),
                            );
                        }
                    }
                }
                let pool = strip_keys(pool, NOT_YET_POOL);
                // A pool that cannot be read at all still exists, so a
                // route to it is not a second error.
                let p = errs.section::<FilePool>(pool, &path);
                pools.push((name, p.unwrap_or_default()));
            }
        }
        Value::Null => {}
        _ => errs.push("pools", "expected a mapping of pool name to pool".into()),
    }
    pools
}

fn strip_keys(v: Value, keys: &[&str]) -> Value {
    match v {
        Value::Mapping(mut m) => {
            for k in keys {
                m.remove(*k);
            }
            Value::Mapping(m)
        }
        other => other,
    }
}

/// The settings of a pool formed by registration with no `pools:` entry:
/// the global sections and `registry.default_algorithm`. Open to
/// registration: it exists for it.
pub(super) fn build_default_pool(algorithm: &str, g: &Globals, errs: &mut Errors) -> Pool {
    let p = FilePool {
        algorithm: Some(algorithm.to_string()),
        registration: Some(true),
        ..FilePool::default()
    };
    build_pool("", p, g, errs)
}

/// One pool, `pools.{name}`.
pub(super) fn build_pool(name: &str, p: FilePool, g: &Globals, errs: &mut Errors) -> Pool {
    let path = format!("pools.{name}");
    let algorithm = build_algorithm(p.algorithm.as_deref(), &path, errs);
    if let Some(h) = &p.health_check {
        check_health(h, &format!("{path}.health_check"), errs);
    }
    if let Some(x) = &p.passive {
        check_passive(x, &format!("{path}.passive"), errs);
    }
    if let Some(t) = &p.timeouts {
        check_timeouts(t, &format!("{path}.timeouts"), true, errs);
    }
    if let Some(d) = &p.dynamic_weights {
        check_dynamic(d, &format!("{path}.dynamic_weights"), errs);
    }
    let health = merge_health(g.health, p.health_check.as_ref());
    let passive = merge_passive(g.passive, p.passive.as_ref());
    let timeouts = merge_timeouts(g.timeouts, p.timeouts.as_ref());
    let retry = build_retry(p.retry.unwrap_or_default(), &format!("{path}.retry"), errs);
    let hash_key = build_hash_key(p.hash_key.as_deref(), algorithm, &path, errs);
    let slow_start = p.slow_start.map_or(DEFAULT_SLOW_START, |d| d.0);
    let queue = build_queue(p.queue.unwrap_or_default(), &path, errs);
    let instances = build_instances(p.instances, &path, errs);
    let max_concurrent = p
        .max_concurrent
        .as_ref()
        .and_then(|v| super::limit::limit(v, &format!("{path}.max_concurrent"), errs));
    check_reserve(
        queue.reserve,
        &instances,
        max_concurrent,
        p.registration == Some(true),
        &path,
        errs,
    );
    let tls = build_upstream_tls(p.tls, &path, errs);
    let cache = p.cache.map(|c| build_cache(c, &path, errs));
    Pool {
        name: name.to_string(),
        algorithm,
        instances,
        retry,
        queue,
        health_check: health,
        passive,
        timeouts,
        panic: p.panic.unwrap_or(DEFAULT_PANIC),
        hash_key,
        slow_start,
        tls,
        cache,
        registration: p.registration.unwrap_or(DEFAULT_POOL_REGISTRATION),
        dynamic_weights: merge_dynamic(g.dynamic, p.dynamic_weights.as_ref()),
        max_concurrent,
    }
}

fn build_algorithm(name: Option<&str>, path: &str, errs: &mut Errors) -> Algorithm {
    match name.map(|n| (n, n.parse::<Algorithm>())) {
        None => DEFAULT_ALGORITHM,
        Some((_, Ok(a))) => a,
        Some((n, Err(_))) => {
            errs.push(&format!("{path}.algorithm"), words::unknown_algorithm(n));
            DEFAULT_ALGORITHM
        }
    }
}

/// `hash_key:`, which `consistent_hash` cannot do without.
fn build_hash_key(
    raw: Option<&str>,
    algorithm: Algorithm,
    path: &str,
    errs: &mut Errors,
) -> Option<HashKey> {
    let hash_key = match raw.map(str::parse::<HashKey>) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(m)) => {
            errs.push(&format!("{path}.hash_key"), m);
            None
        }
    };
    if algorithm == Algorithm::ConsistentHash && hash_key.is_none() && raw.is_none() {
        errs.push(
            &format!("{path}.hash_key"),
            "consistent_hash needs a key: client_ip, header:NAME, cookie:NAME or query:NAME".into(),
        );
    }
    hash_key
}

/// `queue.reserve:` must leave `batch` requests at least one slot of a
/// pool whose every instance has a `max_concurrent` (and no registered
/// instance may join to add more).
fn check_reserve(
    reserve: u32,
    instances: &[crate::model::Instance],
    pool_limit: Option<Limit>,
    registration: bool,
    path: &str,
    errs: &mut Errors,
) {
    let slots: Option<u64> = instances
        .iter()
        .map(|i| match (i.max_concurrent, i.learned_limit, pool_limit) {
            (Some(n), _, _) | (None, None, Some(Limit::Fixed(n))) => Some(u64::from(n)),
            _ => None,
        })
        .sum();
    match slots {
        Some(n) if reserve > 0 && !registration && !instances.is_empty() && u64::from(reserve) >= n => {
            errs.push(
                &format!("{path}.queue.reserve"),
                format!(
                    "keeps all {n} slots of the pool (the sum of max_concurrent) from batch requests; use at most {}",
                    n.saturating_sub(1)
                ),
            )
        }
        _ => {}
    }
}

fn build_queue(q: FileQueue, path: &str, errs: &mut Errors) -> Queue {
    let queue = Queue {
        max: q.max.unwrap_or(DEFAULT_QUEUE_MAX),
        timeout: q.timeout.map_or(DEFAULT_QUEUE_TIMEOUT, |d| d.0),
        reserve: q.reserve.unwrap_or(DEFAULT_QUEUE_RESERVE),
    };
    if queue.timeout.is_zero() {
        errs.push(
            &format!("{path}.queue.timeout"),
            "must be greater than 0 (use `max: 0` for no queue)".into(),
        );
    }
    queue
}
