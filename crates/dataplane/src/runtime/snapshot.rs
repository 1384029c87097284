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
use fulcrum_config::{Config, Pool as PoolConfig, Route};
use fulcrum_policy::{Balancer, PoolView, Priority};
use std::collections::HashMap;
use std::sync::Arc;

/// One instance as a member of one pool.
#[derive(Debug, Clone)]
pub struct Member {
    pub inst: Arc<InstanceState>,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
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

    /// The most specific route for a request, by longest path prefix and host.
    /// Where a request goes: the pool, and how many bytes of the path the
    /// route consumes (the forwarded path is the endpoint's path joined with
    /// the rest). The most specific route wins: the longest path prefix,
    /// then a host-bound route before an any-host one. The registry route
    /// (`registry.route_prefix`, e.g. `/infer/`) competes by the same rule:
    /// `/infer/人数统计` goes to the pool of that task type and to the
    /// endpoint URL exactly as registered.
    pub fn route(
        &self,
        host: Option<&str>,
        path: &str,
    ) -> Result<(&Arc<PoolRuntime>, usize), RouteMiss> {
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
                Some(p) => Ok((p, path.len())),
                None => Err(RouteMiss::NoService(task.into_owned())),
            };
        }
        let r = fixed.ok_or(RouteMiss::NoRoute)?;
        let skip = if r.route.strip_prefix {
            r.route.path_prefix.len()
        } else {
            0
        };
        Ok((&self.pools[r.pool], skip))
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
