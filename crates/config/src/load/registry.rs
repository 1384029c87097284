//! `registry:`: self-registration of instances, and the algorithm of the
//! pools it forms.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_REDIS_PREFIX, DEFAULT_REGISTRY_ALGORITHM,
    DEFAULT_REGISTRY_ENABLED, DEFAULT_REGISTRY_MAX_INSTANCES, DEFAULT_REGISTRY_MAX_TASK_TYPES,
    DEFAULT_REGISTRY_PATH, DEFAULT_ROUTE_PREFIX,
};
use crate::file::FileRegistry;
use crate::model::{AllowedHost, RedisStore, Registry};
use crate::units::Text;
use fulcrum_policy::Algorithm;

/// `registry:`, and the algorithm name for pools formed by registration.
pub(super) fn build_registry(r: FileRegistry, errs: &mut Errors) -> (Registry, &'static str) {
    let redis = redis_store(&r, errs);
    let route_prefix = r
        .route_prefix
        .unwrap_or_else(|| DEFAULT_ROUTE_PREFIX.into());
    if !route_prefix.starts_with('/') || !route_prefix.ends_with('/') {
        errs.push(
            "registry.route_prefix",
            "must start and end with `/`, e.g. `/infer/`".into(),
        );
    }
    let heartbeat_timeout = r
        .heartbeat_timeout
        .map_or(DEFAULT_HEARTBEAT_TIMEOUT, |d| d.0);
    if heartbeat_timeout.is_zero() {
        errs.push(
            "registry.heartbeat_timeout",
            "must be greater than 0".into(),
        );
    }
    let default_algorithm = match r.default_algorithm.as_deref().map(str::parse::<Algorithm>) {
        None => DEFAULT_REGISTRY_ALGORITHM,
        Some(Ok(Algorithm::ConsistentHash)) => {
            errs.push(
                "registry.default_algorithm",
                "consistent_hash needs a hash_key: declare the pool under `pools:`".into(),
            );
            DEFAULT_REGISTRY_ALGORITHM
        }
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            let name = r.default_algorithm.as_deref().unwrap_or_default();
            errs.push(
                "registry.default_algorithm",
                crate::words::unknown_algorithm(name),
            );
            DEFAULT_REGISTRY_ALGORITHM
        }
    };
    let max_task_types = r.max_task_types.unwrap_or(DEFAULT_REGISTRY_MAX_TASK_TYPES);
    let max_instances = r.max_instances.unwrap_or(DEFAULT_REGISTRY_MAX_INSTANCES);
    for (key, v) in [
        ("registry.max_task_types", max_task_types),
        ("registry.max_instances", max_instances),
    ] {
        if v == 0 {
            errs.push(key, "must be at least 1".into());
        }
    }
    let registry = Registry {
        enabled: r.enabled.unwrap_or(DEFAULT_REGISTRY_ENABLED),
        path: r
            .path
            .unwrap_or_else(|| DEFAULT_REGISTRY_PATH.into())
            .into(),
        redis,
        heartbeat_timeout,
        route_prefix,
        token: r.token.filter(|t| !t.is_empty()),
        allowed_hosts: allowed_hosts(r.allowed_hosts.unwrap_or_default(), errs),
        max_task_types,
        max_instances,
    };
    (registry, default_algorithm.name())
}

/// `registry.store`, and with `redis` its `redis_url` (required, a
/// `redis://` URL) and `redis_prefix`.
fn redis_store(r: &FileRegistry, errs: &mut Errors) -> Option<RedisStore> {
    let redis = match r.store.as_deref() {
        None | Some("embedded") => false,
        Some("redis") => true,
        Some(other) => {
            errs.push(
                "registry.store",
                crate::words::unknown_value("store", other, &["embedded", "redis"]),
            );
            false
        }
    };
    if !redis {
        for (key, set) in [
            ("registry.redis_url", r.redis_url.is_some()),
            ("registry.redis_prefix", r.redis_prefix.is_some()),
        ] {
            if set && r.store.as_deref().is_none_or(|s| s == "embedded") {
                errs.push(key, "only used with `store: redis`".into());
            }
        }
        return None;
    }
    let url = match r.redis_url.as_deref().map(str::trim) {
        None | Some("") => {
            errs.push(
                "registry.redis_url",
                "required with `store: redis`, e.g. `redis://127.0.0.1:6379`".into(),
            );
            return None;
        }
        Some(u) if !(u.starts_with("redis://") || u.starts_with("redis+unix://")) => {
            errs.push(
                "registry.redis_url",
                format!("`{u}` is not a Redis URL: write `redis://host:port[/db]`"),
            );
            return None;
        }
        Some(u) => u.to_string(),
    };
    let prefix = r
        .redis_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.into());
    if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c == '*') {
        errs.push(
            "registry.redis_prefix",
            "must be non-empty, without spaces or `*`, e.g. `fulcrum:`".into(),
        );
    }
    Some(RedisStore { url, prefix })
}

/// `registry.allowed_hosts`, each entry checked on its own.
fn allowed_hosts(raw: Vec<Text>, errs: &mut Errors) -> Vec<AllowedHost> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, a)| match a.parse::<AllowedHost>() {
            Ok(h) => Some(h),
            Err(m) => {
                errs.push(&format!("registry.allowed_hosts[{i}]"), m);
                None
            }
        })
        .collect()
}
