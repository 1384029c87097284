//! The running configuration as the operator reads it, and what a reload
//! changes.
//!
//! [`view`] renders a [`Config`] as JSON in the file's own vocabulary
//! (durations as `500ms`, algorithms by name), with every secret redacted
//! (`admin.token`, `registry.token`): `GET /api/v1/config`. [`diff`]
//! compares two configs as a reload swaps them: pools added and removed,
//! instances added, removed and changed (by endpoint, within each pool),
//! a pool's own settings, and the global settings — `POST
//! /api/v1/config/reload`, `fulcrum reload` and the `SIGHUP` log line say
//! exactly that.
//!
//! Every struct is taken apart field by field with an exhaustive pattern,
//! so a field added to the model fails to compile here until it is shown
//! and compared.

use fulcrum_config::{
    AccessLog, AccessLogTarget, Admin, AllowedHost, CacheConfig, Compression, Config, HashKey,
    HealthCheck, HostPattern, Instance, Limit, Limits, ListenerTls, Pool, Probe, Queue, Registry,
    Route, Timeouts, UpstreamTls,
};
use fulcrum_policy::concurrency_limit::Bounds;
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::passive::PassiveConfig;
use fulcrum_policy::retry::{RetryOn, RetryPolicy};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// What replaces a secret in [`view`].
pub const REDACTED: &str = "<redacted>";

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

fn secret(s: &Option<String>) -> Value {
    match s {
        Some(_) => Value::from(REDACTED),
        None => Value::Null,
    }
}

/// The running configuration, defaults filled in, secrets redacted.
pub fn view(c: &Config) -> Value {
    let Config {
        listen,
        admin,
        limits,
        client_header,
        keepalive,
        registry,
        default_pool,
        pools,
        routes,
        tls,
        own_addrs: _,
        log,
        stats,
        metrics,
        access_log,
        shutdown,
    } = c;
    let Admin {
        listen: admin_listen,
        token,
        max_connections: admin_max_connections,
    } = admin;
    let Limits {
        max_body,
        max_header,
        max_connections,
        backlog,
    } = limits;
    json!({
        "listen": listen.to_string(),
        "admin": {
            "listen": admin_listen.to_string(),
            "token": secret(token),
            "max_connections": admin_max_connections,
        },
        "limits": {
            "max_body": max_body,
            "max_header": max_header,
            "max_connections": max_connections,
            "backlog": backlog,
        },
        "timeouts": { "client_header": dur(*client_header), "keepalive": dur(*keepalive) },
        "tls": tls.as_ref().map(|ListenerTls { cert, key }| json!({
            "cert": cert.display().to_string(),
            "key": key.display().to_string(),
        })),
        "registry": registry_view(registry),
        "default_pool": pool_view(default_pool),
        "pools": pools.iter().map(|(n, p)| (n.clone(), pool_view(p))).collect::<Map<_, _>>(),
        "routes": routes.iter().map(route_view).collect::<Vec<_>>(),
        "log": { "format": format!("{:?}", log.format).to_lowercase() },
        "stats": { "window": dur(stats.window) },
        "metrics": { "enabled": metrics.enabled },
        "access_log": access_log_view(access_log),
        "shutdown": { "grace": dur(shutdown.grace) },
    })
}

/// `redis://user:password@host:port/db` without its credentials.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{REDACTED}@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn registry_view(r: &Registry) -> Value {
    let Registry {
        enabled,
        path,
        redis,
        heartbeat_timeout,
        route_prefix,
        token,
        allowed_hosts,
        max_task_types,
        max_instances,
    } = r;
    json!({
        "enabled": enabled,
        "path": path.display().to_string(),
        "store": if redis.is_some() { "redis" } else { "embedded" },
        // The URL may carry a password: only its host part is shown.
        "redis_url": redis.as_ref().map(|r| redact_url(&r.url)),
        "redis_prefix": redis.as_ref().map(|r| r.prefix.clone()),
        "heartbeat_timeout": dur(*heartbeat_timeout),
        "route_prefix": route_prefix,
        "token": secret(token),
        "allowed_hosts": allowed_hosts.iter().map(allowed_host).collect::<Vec<_>>(),
        "max_task_types": max_task_types,
        "max_instances": max_instances,
    })
}

fn allowed_host(a: &AllowedHost) -> String {
    let AllowedHost { host, ports } = a;
    let host = match host {
        HostPattern::Net(n) => n.to_string(),
        HostPattern::Name(n) => n.clone(),
    };
    match ports {
        None => host,
        Some((lo, hi)) if lo == hi => format!("{host}:{lo}"),
        Some((lo, hi)) => format!("{host}:{lo}-{hi}"),
    }
}

fn access_log_view(a: &AccessLog) -> Value {
    let AccessLog {
        target,
        format,
        buffer,
    } = a;
    let path = match target {
        AccessLogTarget::Off => "off".to_string(),
        AccessLogTarget::Stdout => "stdout".to_string(),
        AccessLogTarget::File(p) => p.display().to_string(),
    };
    json!({ "path": path, "format": format!("{format:?}").to_lowercase(), "buffer": buffer })
}

fn route_view(r: &Route) -> Value {
    let Route {
        path_prefix,
        pool,
        strip_prefix,
        host,
        compression,
        class,
        class_header,
    } = r;
    let compression = compression.as_ref().map(|c| {
        let Compression {
            types,
            min_size,
            algorithms,
        } = c;
        let algorithms: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
        json!({ "types": types, "min_size": min_size, "algorithms": algorithms })
    });
    json!({
        "path_prefix": path_prefix,
        "pool": pool,
        "strip_prefix": strip_prefix,
        "host": host,
        "compression": compression,
        "priority": class.name(),
        "priority_header": class_header,
    })
}

/// A pool's settings without its instances (see [`pool_view`]).
fn pool_settings(p: &Pool) -> Map<String, Value> {
    let Pool {
        name: _,
        algorithm,
        instances: _,
        retry,
        queue,
        health_check,
        passive,
        timeouts,
        panic,
        hash_key,
        slow_start,
        tls,
        cache,
        registration,
        dynamic_weights,
        max_concurrent: pool_limit,
    } = p;
    let RetryPolicy {
        tries,
        on,
        timeout,
        non_idempotent,
        buffer,
    } = retry;
    let Queue {
        max,
        timeout: queue_timeout,
        reserve,
    } = queue;
    let HealthCheck {
        interval,
        fast_interval,
        timeout: probe_timeout,
        probe,
        failure_threshold,
        recovery_threshold,
        jitter,
    } = health_check;
    let PassiveConfig {
        max_fails,
        fail_timeout_ms,
        max_ejection_percent,
    } = passive;
    let Timeouts {
        connect,
        response_header,
        idle,
    } = timeouts;
    let UpstreamTls { ca, server_name } = tls;
    let v = json!({
        "algorithm": algorithm.name(),
        "retry": {
            "tries": tries,
            "on": retry_on(on),
            "timeout": timeout.map(dur),
            "non_idempotent": non_idempotent,
            "buffer": buffer,
        },
        "queue": { "max": max, "timeout": dur(*queue_timeout), "reserve": reserve },
        "health_check": {
            "interval": dur(*interval),
            "fast_interval": dur(*fast_interval),
            "timeout": dur(*probe_timeout),
            "path": match probe { Probe::Http { path } => Value::from(path.clone()), Probe::Tcp => Value::Null },
            "type": match probe { Probe::Http { .. } => "http", Probe::Tcp => "tcp" },
            "failure_threshold": failure_threshold,
            "recovery_threshold": recovery_threshold,
            "jitter": jitter,
        },
        "passive": {
            "max_fails": max_fails,
            "fail_timeout": dur(Duration::from_millis(*fail_timeout_ms)),
            "max_ejection_percent": max_ejection_percent,
        },
        "timeouts": {
            "connect": dur(*connect),
            "response_header": dur(*response_header),
            "idle": dur(*idle),
        },
        "panic": panic,
        "hash_key": hash_key.as_ref().map(|k| match k {
            HashKey::ClientIp => "client_ip".to_string(),
            HashKey::Header(h) => format!("header:{h}"),
            HashKey::Cookie(c) => format!("cookie:{c}"),
            HashKey::Query(q) => format!("query:{q}"),
        }),
        "slow_start": dur(*slow_start),
        "tls": {
            "ca": ca.as_ref().map(|p| p.display().to_string()),
            "server_name": server_name,
        },
        "cache": cache.as_ref().map(cache_view),
        "registration": registration,
        "dynamic_weights": dynamic_weights.as_ref().map(dynamic_view),
        "max_concurrent": limit_view(*pool_limit),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn retry_on(on: &RetryOn) -> Vec<String> {
    let RetryOn {
        connect_error,
        reset,
        invalid_response,
        timeout,
        statuses,
    } = on;
    let mut out: Vec<String> = [
        (*connect_error, "connect_error"),
        (*reset, "reset"),
        (*invalid_response, "invalid_response"),
        (*timeout, "timeout"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n.to_string())
    .collect();
    out.extend(statuses.iter().map(|s| format!("http_{s}")));
    out
}

fn dynamic_view(d: &DynamicWeights) -> Value {
    let DynamicWeights {
        interval_ms,
        max_weight,
        max_step,
    } = d;
    json!({
        "interval": dur(Duration::from_millis(*interval_ms)),
        "max": max_weight,
        "max_step": max_step,
    })
}

fn cache_view(c: &CacheConfig) -> Value {
    let CacheConfig {
        ttl,
        max_size,
        max_entry_size,
        methods,
    } = c;
    json!({
        "ttl": dur(*ttl),
        "max_size": max_size,
        "max_entry_size": max_entry_size,
        "methods": methods.iter().map(|m| m.as_str().to_string()).collect::<Vec<_>>(),
    })
}

/// A `max_concurrent:` as the file writes it: a number, `auto` (the
/// default bounds) or `{ min, max }`.
fn limit_view(l: Option<Limit>) -> Value {
    match l {
        None => Value::Null,
        Some(Limit::Fixed(n)) => n.into(),
        Some(Limit::Learned(b)) if b == Bounds::default() => "auto".into(),
        Some(Limit::Learned(Bounds { min, max })) => json!({ "min": min, "max": max }),
    }
}

fn instance_view(i: &Instance) -> Value {
    let Instance {
        endpoint,
        weight,
        max_concurrent,
        learned_limit,
        priority,
        health_path,
    } = i;
    let limit = max_concurrent
        .map(Limit::Fixed)
        .or(learned_limit.map(Limit::Learned));
    json!({
        "endpoint": endpoint.url,
        "weight": weight,
        "max_concurrent": limit_view(limit),
        "priority": priority.name(),
        "health_path": health_path,
    })
}

fn pool_view(p: &Pool) -> Value {
    let mut m = pool_settings(p);
    m.insert(
        "instances".into(),
        p.instances.iter().map(instance_view).collect(),
    );
    Value::Object(m)
}

/// An instance of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceRef {
    pub pool: String,
    pub endpoint: String,
}

/// An instance whose settings changed, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstanceChange {
    pub pool: String,
    pub endpoint: String,
    /// e.g. `weight`, `priority`.
    pub fields: Vec<String>,
}

/// A pool whose own settings changed, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PoolChange {
    pub pool: String,
    /// e.g. `algorithm`, `health_check.interval`.
    pub settings: Vec<String>,
}

/// What a reload changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Changes {
    pub pools_added: Vec<String>,
    pub pools_removed: Vec<String>,
    pub pools_changed: Vec<PoolChange>,
    pub instances_added: Vec<InstanceRef>,
    pub instances_removed: Vec<InstanceRef>,
    pub instances_changed: Vec<InstanceChange>,
    /// Global settings, e.g. `limits.max_body`, `routes`.
    pub settings_changed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// One line: `pools added: tts; instances removed: asr http://…; …`,
    /// or `no changes`.
    pub fn summary(&self) -> String {
        let mut parts = vec![];
        let mut list = |what: &str, items: Vec<String>| {
            if !items.is_empty() {
                parts.push(format!("{what}: {}", items.join(", ")));
            }
        };
        list("pools added", self.pools_added.clone());
        list("pools removed", self.pools_removed.clone());
        list(
            "pools changed",
            self.pools_changed
                .iter()
                .map(|p| format!("{} ({})", p.pool, p.settings.join(", ")))
                .collect(),
        );
        let inst = |v: &[InstanceRef]| {
            v.iter()
                .map(|i| format!("{} {}", i.pool, i.endpoint))
                .collect()
        };
        list("instances added", inst(&self.instances_added));
        list("instances removed", inst(&self.instances_removed));
        list(
            "instances changed",
            self.instances_changed
                .iter()
                .map(|i| format!("{} {} ({})", i.pool, i.endpoint, i.fields.join(", ")))
                .collect(),
        );
        list("settings changed", self.settings_changed.clone());
        if parts.is_empty() {
            "no changes".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The leaf paths where two JSON values differ (`a.b`), `prefix` first.
fn differing(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                differing(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// What swapping `old` for `new` changes.
pub fn diff(old: &Config, new: &Config) -> Changes {
    let mut ch = Changes::default();
    for name in new.pools.keys() {
        if !old.pools.contains_key(name) {
            ch.pools_added.push(name.clone());
        }
    }
    for (name, op) in &old.pools {
        let Some(np) = new.pools.get(name) else {
            ch.pools_removed.push(name.clone());
            continue;
        };
        let mut settings = vec![];
        differing(
            "",
            &Value::Object(pool_settings(op)),
            &Value::Object(pool_settings(np)),
            &mut settings,
        );
        if !settings.is_empty() {
            ch.pools_changed.push(PoolChange {
                pool: name.clone(),
                settings,
            });
        }
        let at = |p: &Pool, ep: &str| p.instances.iter().position(|i| i.endpoint.url == ep);
        for i in &np.instances {
            if at(op, &i.endpoint.url).is_none() {
                ch.instances_added.push(InstanceRef {
                    pool: name.clone(),
                    endpoint: i.endpoint.url.clone(),
                });
            }
        }
        for i in &op.instances {
            let ep = &i.endpoint.url;
            match at(np, ep) {
                None => ch.instances_removed.push(InstanceRef {
                    pool: name.clone(),
                    endpoint: ep.clone(),
                }),
                Some(j) => {
                    let mut fields = vec![];
                    differing(
                        "",
                        &instance_view(i),
                        &instance_view(&np.instances[j]),
                        &mut fields,
                    );
                    if !fields.is_empty() {
                        ch.instances_changed.push(InstanceChange {
                            pool: name.clone(),
                            endpoint: ep.clone(),
                            fields,
                        });
                    }
                }
            }
        }
    }
    // Global settings: everything but the pools, compared leaf by leaf
    // (a secret's change shows as its key, never its value: both views
    // hold the same placeholder, so tokens are compared directly).
    let strip = |c: &Config| {
        let mut v = view(c);
        if let Value::Object(m) = &mut v {
            m.remove("pools");
        }
        v
    };
    differing("", &strip(old), &strip(new), &mut ch.settings_changed);
    if old.admin.token != new.admin.token {
        ch.settings_changed.push("admin.token".into());
    }
    if old.registry.token != new.registry.token {
        ch.settings_changed.push("registry.token".into());
    }
    // Routes are a list: one entry for the lot.
    let mut routes = false;
    ch.settings_changed.retain(|s| {
        if s == "routes" || s.starts_with("routes.") || s.starts_with("routes[") {
            routes = true;
            false
        } else {
            true
        }
    });
    if routes {
        ch.settings_changed.push("routes".into());
    }
    ch.settings_changed.sort();
    ch.settings_changed.dedup();
    ch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        fulcrum_config::parse(yaml, &|_| None).expect("valid config")
    }

    const BASE: &str = "admin: { token: s3cret }\n\
        registry: { token: r3g }\n\
        pools:\n\
        \x20 asr:\n    algorithm: least_connections\n    instances: [ { endpoint: \"http://10.0.0.1:80\" }, { endpoint: \"http://10.0.0.2:80\", weight: 2 } ]\n\
        \x20 llm:\n    instances: [ { endpoint: \"http://10.0.1.1:80\" } ]\n\
        routes: [ { path_prefix: /asr, pool: asr }, { path_prefix: /, pool: llm } ]\n";

    #[test]
    fn the_view_redacts_secrets_and_speaks_the_files_units() {
        let v = view(&cfg(BASE));
        let text = v.to_string();
        assert!(!text.contains("s3cret") && !text.contains("r3g"), "{text}");
        assert_eq!(v["admin"]["token"], REDACTED);
        assert_eq!(v["registry"]["token"], REDACTED);
        assert_eq!(v["pools"]["asr"]["algorithm"], "least_connections");
        assert_eq!(v["pools"]["asr"]["instances"][1]["weight"], 2);
        assert_eq!(
            v["pools"]["asr"]["health_check"]["interval"],
            dur(fulcrum_config::defaults::DEFAULT_HEALTH_INTERVAL)
        );
        assert_eq!(dur(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(v["routes"][0]["pool"], "asr");
        let no_token = view(&cfg("pools: {}\n"));
        assert_eq!(no_token["admin"]["token"], Value::Null);
    }

    #[test]
    fn no_change_is_no_change() {
        let ch = diff(&cfg(BASE), &cfg(BASE));
        assert!(ch.is_empty(), "{ch:?}");
        assert_eq!(ch.summary(), "no changes");
    }

    #[test]
    fn every_kind_of_change_is_named_exactly() {
        let new = BASE
            .replace("algorithm: least_connections", "algorithm: round_robin")
            .replace("weight: 2", "weight: 3")
            .replace(
                "{ endpoint: \"http://10.0.0.1:80\" }, ",
                "{ endpoint: \"http://10.0.0.9:80\" }, ",
            )
            .replace(
                "admin: { token: s3cret }",
                "admin: { token: other }\nlimits: { max_body: 1MiB }",
            )
            .replace(
                "routes:",
                "  tts:\n    instances: [ { endpoint: \"http://10.0.2.1:80\" } ]\nroutes:",
            )
            .replace(
                "\x20 llm:\n    instances: [ { endpoint: \"http://10.0.1.1:80\" } ]\n",
                "",
            )
            .replace(
                "{ path_prefix: /, pool: llm }",
                "{ path_prefix: /, pool: tts }",
            );
        let ch = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(ch.pools_added, ["tts"]);
        assert_eq!(ch.pools_removed, ["llm"]);
        assert_eq!(
            ch.pools_changed,
            [PoolChange {
                pool: "asr".into(),
                settings: vec!["algorithm".into()]
            }]
        );
        let r = |ep: &str| InstanceRef {
            pool: "asr".into(),
            endpoint: ep.into(),
        };
        assert_eq!(ch.instances_added, [r("http://10.0.0.9:80")]);
        assert_eq!(ch.instances_removed, [r("http://10.0.0.1:80")]);
        assert_eq!(
            ch.instances_changed,
            [InstanceChange {
                pool: "asr".into(),
                endpoint: "http://10.0.0.2:80".into(),
                fields: vec!["weight".into()]
            }]
        );
        assert_eq!(
            ch.settings_changed,
            ["admin.token", "limits.max_body", "routes"]
        );
        let s = ch.summary();
        assert!(
            s.contains("pools added: tts") && s.contains("asr http://10.0.0.2:80 (weight)"),
            "{s}"
        );
        assert!(!s.contains("other"), "no secret in the summary: {s}");
    }
}
