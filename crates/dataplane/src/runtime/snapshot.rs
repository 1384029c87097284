//! The immutable runtime snapshot the request path reads.
//!
//! The control plane builds a new [`Snapshot`] from a config (reusing the
//! live [`InstanceState`] of every endpoint it already knew, so counters and
//! health survive a reload) and publishes it with `ArcSwap`; a request loads
//! the current one once and works on it to the end.

use super::counters::{MemberCounters, PoolCounters};
use super::dynamic::DynamicWeight;
use super::instance::InstanceState;
use super::queue::Waiters;
use crate::cache::ResponseCache;
use fulcrum_config::defaults::{DEFAULT_PRIORITY_HEADER, DEFAULT_ROUTE_CLASS};
use fulcrum_config::{Compression, Config, Pool as PoolConfig, Route};
use fulcrum_policy::concurrency_limit::Bounds;
use fulcrum_policy::{Balancer, PoolView, Priority, RequestClass};
use std::collections::HashMap;
use std::sync::Arc;

/// One instance as a member of one pool.
#[derive(Debug, Clone)]
pub struct Member {
    pub inst: Arc<InstanceState>,
    pub weight: u32,
    /// A fixed `max_concurrent` (the instance's, or else the pool's).
    pub max_concurrent: Option<u32>,
    /// `max_concurrent: auto`'s bounds: the limit is the instance's
    /// learned one (`InstanceState::learned_limit`), within them.
    pub learn: Option<Bounds>,
    pub priority: Priority,
    /// This membership's request counters (carried over by rebuilds).
    pub counters: Arc<MemberCounters>,
    /// The weight `dynamic_weights:` gave it (carried over by rebuilds
    /// while the pool keeps them on).
    pub dynamic_weight: Arc<DynamicWeight>,
}

#[derive(Debug)]
pub struct PoolRuntime {
    pub cfg: PoolConfig,
    pub members: Vec<Member>,
    pub balancer: Box<dyn Balancer>,
    /// How the policy's view reads this pool's members.
    pub view: PoolView,
    pub waiters: Arc<Waiters>,
    /// The response cache, when the pool has `cache:`.
    pub cache: Option<Arc<ResponseCache>>,
    /// The pool's request counters (carried over by rebuilds).
    pub counters: Arc<PoolCounters>,
}

impl PoolRuntime {
    /// Whether tries should feed the latency and error estimates.
    pub fn measures(&self) -> bool {
        let i = self.cfg.algorithm.inputs();
        i.latency || i.resources
    }
}

/// Why no pool takes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMiss {
    NoRoute,
    /// The registry route, for a task type nobody registered.
    NoService(String),
}

#[derive(Debug)]
pub struct RouteEntry {
    pub route: Route,
    pub pool: usize,
    /// `route.compression`, shared with the requests that use it.
    pub compression: Option<Arc<Compression>>,
}

/// Where [`Snapshot::route`] sends a request: the pool, how many bytes of
/// the path the route consumes, how answers may be compressed, and the
/// class its requests take in the pool's queue.
#[derive(Debug)]
pub struct Routed<'a> {
    pub pool: &'a Arc<PoolRuntime>,
    /// Bytes of the path the route consumes: the forwarded path is the
    /// endpoint's path joined with the rest.
    pub skip: usize,
    /// The route's `compression:` (the registry route has none).
    pub compression: Option<&'a Arc<Compression>>,
    /// The route's `priority:`, the class its requests take in the
    /// pool's queue.
    pub class: RequestClass,
    /// Whether `X-Fulcrum-Priority` may set the class instead.
    pub class_header: bool,
}

#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    /// Most specific first: longer prefix, then host-bound before any-host.
    pub routes: Vec<RouteEntry>,
    pub pools: Vec<Arc<PoolRuntime>>,
    /// Every distinct instance, by endpoint URL.
    pub instances: HashMap<String, Arc<InstanceState>>,
    /// Pool positions by name.
    pub(super) index: HashMap<String, usize>,
    /// Where each instance first appears: (position in `pools`, position
    /// in that pool's members and `cfg.instances`).
    pub(super) first_member: HashMap<String, (usize, usize)>,
}

impl Snapshot {
    /// The first pool `url` is a member of (pools in name order), and its
    /// position there: a lookup, however many pools there are.
    pub fn first_member(&self, url: &str) -> Option<(&Arc<PoolRuntime>, usize)> {
        let &(pool, at) = self.first_member.get(url)?;
        Some((self.pools.get(pool)?, at))
    }

    /// Where a request goes: the pool, how many bytes of the path the route
    /// consumes, and its compression. The most specific route wins: the longest path prefix,
    /// then a host-bound route before an any-host one. The registry route
    /// (`registry.route_prefix`, e.g. `/infer/`) competes by the same rule:
    /// `/infer/人数统计` goes to the pool of that task type and to the
    /// endpoint URL exactly as registered, its requests `normal` unless
    /// their header says otherwise.
    pub fn route(&self, host: Option<&str>, path: &str) -> Result<Routed<'_>, RouteMiss> {
        let host = host.map(strip_port);
        let fixed = self.routes.iter().find(|r| {
            path.starts_with(r.route.path_prefix.as_str())
                && r.route
                    .host
                    .as_deref()
                    .is_none_or(|h| host.is_some_and(|x| x.eq_ignore_ascii_case(h)))
        });
        let reg = &self.config.registry;
        let prefix = reg.route_prefix.as_str();
        if reg.enabled
            && path.starts_with(prefix)
            && fixed.is_none_or(|r| r.route.path_prefix.len() < prefix.len())
        {
            let segment = &path[prefix.len()..];
            let segment = segment.split('/').next().unwrap_or_default();
            let task = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            return match self.pool(&task) {
                Some(pool) => Ok(Routed {
                    pool,
                    skip: path.len(),
                    compression: None,
                    class: DEFAULT_ROUTE_CLASS,
                    class_header: DEFAULT_PRIORITY_HEADER,
                }),
                None => Err(RouteMiss::NoService(task.into_owned())),
            };
        }
        let r = fixed.ok_or(RouteMiss::NoRoute)?;
        let skip = if r.route.strip_prefix {
            r.route.path_prefix.len()
        } else {
            0
        };
        Ok(Routed {
            pool: &self.pools[r.pool],
            skip,
            compression: r.compression.as_ref(),
            class: r.route.class,
            class_header: r.route.class_header,
        })
    }

    pub fn pool(&self, name: &str) -> Option<&Arc<PoolRuntime>> {
        self.index.get(name).map(|&i| &self.pools[i])
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("a.b"), "a.b");
    }
}
