//! `registry:`: self-registration of instances, and the algorithm of the
//! pools it forms.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_REGISTRY_ALGORITHM, DEFAULT_REGISTRY_ENABLED,
    DEFAULT_REGISTRY_MAX_INSTANCES, DEFAULT_REGISTRY_MAX_TASK_TYPES, DEFAULT_REGISTRY_PATH,
    DEFAULT_ROUTE_PREFIX,
};
use crate::file::FileRegistry;
use crate::model::{AllowedHost, Registry};
use crate::units::Text;
use fulcrum_policy::Algorithm;

/// `registry:`, and the algorithm name for pools formed by registration.
pub(super) fn build_registry(r: FileRegistry, errs: &mut Errors) -> (Registry, &'static str) {
    match r.store.as_deref() {
        None | Some("embedded") => {}
        Some("redis") => errs.push(
            "registry.store",
            "`redis` is not supported by this version of fulcrum yet".into(),
        ),
        Some(other) => errs.push(
            "registry.store",
            crate::words::unknown_value("store", other, &["embedded", "redis"]),
        ),
    }
    if r.redis_url.is_some() && r.store.as_deref() != Some("redis") {
        errs.push("registry.redis_url", "only used with `store: redis`".into());
    }
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
        heartbeat_timeout,
        route_prefix,
        token: r.token.filter(|t| !t.is_empty()),
        allowed_hosts: allowed_hosts(r.allowed_hosts.unwrap_or_default(), errs),
        max_task_types,
        max_instances,
    };
    (registry, default_algorithm.name())
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
