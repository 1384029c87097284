//! Stage 2: from text to a validated [`Config`], collecting every error.
//!
//! The pipeline is: `${ENV}` expansion → YAML syntax → each section
//! deserialized on its own (so one bad pool does not hide errors in the
//! next) → semantic validation. Every error carries the YAML path of the
//! offending key, e.g. `pools.asr.instances[1].weight`.

use crate::defaults::*;
use crate::file::*;
use crate::model::*;
use crate::units::{expand_env, Dur};
use fulcrum_policy::passive::PassiveConfig;
use fulcrum_policy::retry::{RetryOn, RetryPolicy};
use fulcrum_policy::{Algorithm, Priority};
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// YAML path such as `pools.asr.instances[0].weight`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Top-level keys and what they hold.
const TOP_KEYS: &[&str] = &[
    "listen",
    "admin",
    "health_check",
    "passive",
    "timeouts",
    "limits",
    "pools",
    "routes",
    "registry",
    "tls",
];
/// Keys from the product specification that this version does not implement yet.
const NOT_YET_TOP: &[&str] = &[];
const NOT_YET_POOL: &[&str] = &["dynamic_weights"];

// Defaults once defined here, still reachable as `load::…`.
pub use crate::defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_CACHE_ENTRY, DEFAULT_CACHE_SIZE, DEFAULT_LISTEN, MAX_WEIGHT,
};

/// Parses and validates a config file's text. `env` looks up `${NAME}`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let text = expand_env(text, env).map_err(|m| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: m,
        }])
    })?;
    let root: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: format!("invalid YAML: {e}"),
        }])
    })?;
    let map = match root {
        Value::Mapping(m) => m,
        Value::Null => Default::default(),
        _ => {
            return Err(errs.fail(
                "",
                "the config file must be a mapping of keys such as `listen:` and `pools:`",
            ))
        }
    };

    let mut listen = None;
    let mut admin = FileAdmin::default();
    let mut health = FileHealth::default();
    let mut passive = FilePassive::default();
    let mut timeouts = FileTimeouts::default();
    let mut limits = FileLimits::default();
    let mut pools: Vec<(String, FilePool)> = vec![];
    let mut routes: Vec<(usize, FileRoute)> = vec![];
    let mut registry = FileRegistry::default();
    let mut tls: Option<FileListenerTls> = None;

    for (k, v) in map {
        let Some(key) = k.as_str().map(str::to_owned) else {
            errs.push("", format!("keys must be strings, found {k:?}"));
            continue;
        };
        match key.as_str() {
            "listen" => listen = errs.section::<String>(v, "listen"),
            "admin" => admin = errs.section(v, "admin").unwrap_or_default(),
            "health_check" => health = errs.section(v, "health_check").unwrap_or_default(),
            "passive" => passive = errs.section(v, "passive").unwrap_or_default(),
            "timeouts" => timeouts = errs.section(v, "timeouts").unwrap_or_default(),
            "limits" => limits = errs.section(v, "limits").unwrap_or_default(),
            "registry" => registry = errs.section(v, "registry").unwrap_or_default(),
            "tls" => tls = listener_tls(v, &mut errs),
            "pools" => match v {
                Value::Mapping(m) => {
                    for (name, pool) in m {
                        let Some(name) = name.as_str().map(str::to_owned) else {
                            errs.push(
                                "pools",
                                format!("pool names must be strings, found {name:?}"),
                            );
                            continue;
                        };
                        let path = format!("pools.{name}");
                        if let Value::Mapping(pm) = &pool {
                            for k in NOT_YET_POOL {
                                if pm.contains_key(*k) {
                                    errs.push(
                                        &format!("{path}.{k}"),
                                        "not supported by this version of fulcrum yet".into(),
                                    );
                                }
                            }
                        }
                        let pool = strip_keys(pool, NOT_YET_POOL);
                        if let Some(p) = errs.section::<FilePool>(pool, &path) {
                            pools.push((name, p));
                        }
                    }
                }
                Value::Null => {}
                _ => errs.push("pools", "expected a mapping of pool name to pool".into()),
            },
            "routes" => match v {
                Value::Sequence(s) => {
                    for (i, r) in s.into_iter().enumerate() {
                        if let Some(r) = errs.section::<FileRoute>(r, &format!("routes[{i}]")) {
                            routes.push((i, r));
                        }
                    }
                }
                Value::Null => {}
                _ => errs.push("routes", "expected a list of routes".into()),
            },
            other if NOT_YET_TOP.contains(&other) => {
                errs.push(other, "not supported by this version of fulcrum yet".into())
            }
            other => errs.push(
                other,
                format!("unknown key; expected one of: {}", TOP_KEYS.join(", ")),
            ),
        }
    }

    let listen = errs.addr("listen", listen.as_deref().unwrap_or(DEFAULT_LISTEN));
    let admin_listen = errs.addr(
        "admin.listen",
        admin.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN),
    );
    let admin_token = admin.token.filter(|t| !t.is_empty());
    let limits = Limits {
        max_body: limits.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
        max_header: limits.max_header.map_or(DEFAULT_MAX_HEADER, |s| s.0),
        max_connections: limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
    };
    if limits.max_header < MIN_MAX_HEADER {
        errs.push(
            "limits.max_header",
            format!("must be at least {}KiB", MIN_MAX_HEADER >> 10),
        );
    }
    if limits.max_connections == 0 {
        errs.push("limits.max_connections", "must be at least 1".into());
    }

    let client_header = timeouts
        .client_header
        .map_or(DEFAULT_CLIENT_HEADER_TIMEOUT, |d| d.0);
    if client_header.is_zero() {
        errs.push("timeouts.client_header", "must be greater than 0".into());
    }

    let mut out_pools = BTreeMap::new();
    for (name, p) in pools {
        let pool = build_pool(&name, p, &health, &passive, &timeouts, &mut errs);
        out_pools.insert(name, pool);
    }
    let out_routes = build_routes(routes, &out_pools, &mut errs);
    let (registry, default_algorithm) = build_registry(registry, &mut errs);
    let default_pool = build_pool(
        "",
        FilePool {
            algorithm: Some(default_algorithm.to_string()),
            ..FilePool::default()
        },
        &health,
        &passive,
        &timeouts,
        &mut errs,
    );

    if !errs.0.is_empty() {
        return Err(ConfigErrors(errs.0));
    }
    Ok(Config {
        client_header,
        registry,
        default_pool,
        listen: listen.expect("no errors"),
        admin: Admin {
            listen: admin_listen.expect("no errors"),
            token: admin_token,
        },
        limits,
        pools: out_pools,
        routes: out_routes,
        tls: tls.map(|t| ListenerTls {
            cert: t.cert.into(),
            key: t.key.into(),
        }),
    })
}

/// Reads the top-level `tls:` section. Its files must be named: an empty
/// `cert` or `key` is reported here, with every other error, even when the
/// section is otherwise incomplete, and never reaches a file read.
fn listener_tls(v: Value, errs: &mut Errors) -> Option<FileListenerTls> {
    if let Value::Mapping(m) = &v {
        for key in ["cert", "key"] {
            if let Some(Value::String(s)) = m.get(key) {
                if s.trim().is_empty() {
                    errs.push(&format!("tls.{key}"), NOT_EMPTY_PEM.into());
                }
            }
        }
    }
    errs.section(v, "tls")
}

/// The error for a TLS file setting that names no file.
const NOT_EMPTY_PEM: &str = "must not be empty; name a PEM file";

fn build_upstream_tls(t: Option<FileUpstreamTls>, path: &str, errs: &mut Errors) -> UpstreamTls {
    let t = t.unwrap_or_default();
    if t.ca.as_deref().is_some_and(|c| c.trim().is_empty()) {
        errs.push(&format!("{path}.tls.ca"), NOT_EMPTY_PEM.into());
    }
    if let Some(n) = &t.server_name {
        if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
            errs.push(
                &format!("{path}.tls.server_name"),
                format!("`{n}` is not a DNS name or IP address"),
            );
        }
    }
    UpstreamTls {
        ca: t.ca.map(Into::into),
        server_name: t.server_name,
    }
}

fn build_cache(c: FileCache, path: &str, errs: &mut Errors) -> CacheConfig {
    let path = format!("{path}.cache");
    let ttl = c.ttl.map_or(DEFAULT_CACHE_TTL, |d| d.0);
    if ttl.is_zero() {
        errs.push(&format!("{path}.ttl"), "must be greater than 0".into());
    }
    let max_size = c.max_size.map_or(DEFAULT_CACHE_SIZE, |s| s.0);
    if max_size == 0 {
        errs.push(&format!("{path}.max_size"), "must be greater than 0".into());
    }
    let max_entry_size = c
        .max_entry_size
        .map_or(DEFAULT_CACHE_ENTRY.min(max_size), |s| s.0);
    if max_entry_size == 0 || max_entry_size > max_size {
        errs.push(
            &format!("{path}.max_entry_size"),
            format!("must be between 1 and max_size ({max_size} bytes)"),
        );
    }
    let mut methods = vec![];
    for (i, m) in c
        .methods
        .unwrap_or_else(|| DEFAULT_CACHE_METHODS.iter().map(|&m| m.into()).collect())
        .iter()
        .enumerate()
    {
        let up = m.to_ascii_uppercase();
        match up.as_str() {
            "GET" | "POST" => {
                let m = http::Method::from_bytes(up.as_bytes()).expect("a valid method");
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
            _ => errs.push(
                &format!("{path}.methods[{i}]"),
                format!("`{m}` cannot be cached; expected GET or POST"),
            ),
        }
    }
    if methods.is_empty() {
        errs.push(
            &format!("{path}.methods"),
            "must name at least one method".into(),
        );
    }
    CacheConfig {
        ttl,
        max_size,
        max_entry_size,
        methods,
    }
}

/// The embedded default: proxy on 0.0.0.0:8080, admin on 127.0.0.1:9090, no pools.
pub fn embedded_default() -> Config {
    parse("", &|_| None).expect("the empty config is valid")
}

fn build_registry(r: FileRegistry, errs: &mut Errors) -> (Registry, &'static str) {
    match r.store.as_deref() {
        None | Some("embedded") => {}
        Some("redis") => errs.push(
            "registry.store",
            "`redis` is not supported by this version of fulcrum yet".into(),
        ),
        Some(other) => errs.push(
            "registry.store",
            format!("unknown store `{other}`; expected embedded or redis"),
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
        Some(Err(m)) => {
            errs.push("registry.default_algorithm", m);
            DEFAULT_REGISTRY_ALGORITHM
        }
    };
    let registry = Registry {
        enabled: r.enabled.unwrap_or(DEFAULT_REGISTRY_ENABLED),
        path: r
            .path
            .unwrap_or_else(|| DEFAULT_REGISTRY_PATH.into())
            .into(),
        heartbeat_timeout,
        route_prefix,
        token: r.token.filter(|t| !t.is_empty()),
        allowed_hosts: r.allowed_hosts.unwrap_or_default(),
    };
    (registry, default_algorithm.name())
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

fn build_pool(
    name: &str,
    p: FilePool,
    g_health: &FileHealth,
    g_passive: &FilePassive,
    g_timeouts: &FileTimeouts,
    errs: &mut Errors,
) -> Pool {
    let path = format!("pools.{name}");
    let algorithm = match p.algorithm.as_deref().map(str::parse::<Algorithm>) {
        None => DEFAULT_ALGORITHM,
        Some(Ok(a)) => a,
        Some(Err(m)) => {
            errs.push(&format!("{path}.algorithm"), m);
            DEFAULT_ALGORITHM
        }
    };
    let health = merge_health(
        g_health,
        p.health_check.as_ref(),
        &format!("{path}.health_check"),
        errs,
    );
    let pv = p.passive.as_ref();
    let passive = PassiveConfig {
        max_fails: pv
            .and_then(|x| x.max_fails)
            .or(g_passive.max_fails)
            .unwrap_or(DEFAULT_MAX_FAILS),
        fail_timeout_ms: millis(
            pv.and_then(|x| x.fail_timeout).or(g_passive.fail_timeout),
            DEFAULT_FAIL_TIMEOUT,
        ),
    };
    let t = p.timeouts.as_ref();
    let pick = |f: fn(&FileTimeouts) -> Option<Dur>, d: Duration| {
        Duration::from_millis(millis(t.and_then(f).or(f(g_timeouts)), d))
    };
    let timeouts = Timeouts {
        connect: pick(|x| x.connect, DEFAULT_CONNECT_TIMEOUT),
        response_header: pick(|x| x.response_header, DEFAULT_RESPONSE_HEADER_TIMEOUT),
        idle: pick(|x| x.idle, DEFAULT_IDLE_TIMEOUT),
    };
    if t.is_some_and(|t| t.client_header.is_some()) {
        errs.push(
            &format!("{path}.timeouts.client_header"),
            "is a listener setting shared by every pool; set it in the top-level `timeouts:`"
                .into(),
        );
    }
    for (key, get) in [
        (
            "connect",
            (|x: &FileTimeouts| x.connect) as fn(&FileTimeouts) -> Option<Dur>,
        ),
        ("response_header", |x| x.response_header),
        ("idle", |x| x.idle),
    ] {
        if t.and_then(get)
            .or(get(g_timeouts))
            .is_some_and(|d| d.0.is_zero())
        {
            let at = if t.and_then(get).is_some() {
                format!("{path}.timeouts.{key}")
            } else {
                format!("timeouts.{key}")
            };
            errs.push(&at, "must be greater than 0".into());
        }
    }
    let retry = build_retry(p.retry.unwrap_or_default(), &format!("{path}.retry"), errs);
    let hash_key = match p.hash_key.as_deref().map(str::parse::<HashKey>) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(m)) => {
            errs.push(&format!("{path}.hash_key"), m);
            None
        }
    };
    if algorithm == Algorithm::ConsistentHash && hash_key.is_none() && p.hash_key.is_none() {
        errs.push(
            &format!("{path}.hash_key"),
            "consistent_hash needs a key: client_ip, header:NAME, cookie:NAME or query:NAME".into(),
        );
    }
    let slow_start = p.slow_start.map_or(DEFAULT_SLOW_START, |d| d.0);
    let q = p.queue.unwrap_or_default();
    let queue = Queue {
        max: q.max.unwrap_or(DEFAULT_QUEUE_MAX),
        timeout: q.timeout.map_or(DEFAULT_QUEUE_TIMEOUT, |d| d.0),
    };
    if queue.timeout.is_zero() {
        errs.push(
            &format!("{path}.queue.timeout"),
            "must be greater than 0 (use `max: 0` for no queue)".into(),
        );
    }

    let mut seen = HashSet::new();
    let mut instances = vec![];
    for (i, raw) in p.instances.into_iter().enumerate() {
        let ipath = format!("{path}.instances[{i}]");
        let Some(inst) = errs.section::<FileInstance>(raw, &ipath) else {
            continue;
        };
        let endpoint = match parse_endpoint(&inst.endpoint) {
            Ok(e) => e,
            Err(m) => {
                errs.push(&format!("{ipath}.endpoint"), m);
                continue;
            }
        };
        if !seen.insert(endpoint.url.clone()) {
            errs.push(
                &format!("{ipath}.endpoint"),
                format!("`{}` is listed twice in this pool", endpoint.url),
            );
        }
        let weight = inst.weight.unwrap_or(DEFAULT_WEIGHT);
        if weight == 0 {
            errs.push(
                &format!("{ipath}.weight"),
                "must be at least 1 (drain an instance instead of weighting it 0)".into(),
            );
        }
        if weight > MAX_WEIGHT {
            errs.push(
                &format!("{ipath}.weight"),
                format!("must be at most {MAX_WEIGHT}"),
            );
        }
        if inst.max_concurrent == Some(0) {
            errs.push(
                &format!("{ipath}.max_concurrent"),
                "must be at least 1 (omit it for no limit)".into(),
            );
        }
        let priority = match inst.priority.as_deref().map(str::parse::<Priority>) {
            None => DEFAULT_PRIORITY,
            Some(Ok(p)) => p,
            Some(Err(m)) => {
                errs.push(&format!("{ipath}.priority"), m);
                DEFAULT_PRIORITY
            }
        };
        if let Some(hp) = &inst.health_path {
            if !hp.starts_with('/') {
                errs.push(
                    &format!("{ipath}.health_path"),
                    "must start with `/`".into(),
                );
            }
        }
        instances.push(Instance {
            endpoint,
            weight: weight.clamp(1, MAX_WEIGHT),
            max_concurrent: inst.max_concurrent,
            priority,
            health_path: inst.health_path,
        });
    }
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
    }
}

/// Whole milliseconds of `d` (or of `default`), saturating.
fn millis(d: Option<Dur>, default: Duration) -> u64 {
    d.map_or(default, |d| d.0)
        .as_millis()
        .min(u128::from(u64::MAX)) as u64
}

fn merge_health(
    g: &FileHealth,
    p: Option<&FileHealth>,
    path: &str,
    errs: &mut Errors,
) -> HealthCheck {
    let get = |f: fn(&FileHealth) -> Option<Dur>| p.and_then(f).or(f(g)).map(|d| d.0);
    let probe_path = p
        .and_then(|x| x.path.clone())
        .or(g.path.clone())
        .unwrap_or_else(|| DEFAULT_HEALTH_PATH.into());
    let probe = if probe_path == "tcp" {
        Probe::Tcp
    } else {
        if !probe_path.starts_with('/') {
            errs.push(
                &format!("{path}.path"),
                "must start with `/`, or be `tcp` for a connect-only probe".into(),
            );
        }
        Probe::Http { path: probe_path }
    };
    let interval = get(|x| x.interval).unwrap_or(DEFAULT_HEALTH_INTERVAL);
    let fast_interval = get(|x| x.fast_interval).unwrap_or(interval / FAST_INTERVAL_DIVISOR);
    if fast_interval.is_zero() {
        errs.push(
            &format!("{path}.fast_interval"),
            "must be greater than 0".into(),
        );
    }
    let timeout = get(|x| x.timeout).unwrap_or(DEFAULT_HEALTH_TIMEOUT);
    if interval.is_zero() {
        errs.push(&format!("{path}.interval"), "must be greater than 0".into());
    }
    if timeout.is_zero() {
        errs.push(&format!("{path}.timeout"), "must be greater than 0".into());
    }
    let jitter = p
        .and_then(|x| x.jitter)
        .or(g.jitter)
        .unwrap_or(DEFAULT_JITTER);
    if !(0.0..=1.0).contains(&jitter) {
        errs.push(
            &format!("{path}.jitter"),
            "must be a fraction between 0 and 1".into(),
        );
    }
    let thr = |f: fn(&FileHealth) -> Option<u32>, key: &str, d: u32, errs: &mut Errors| {
        let v = p.and_then(f).or(f(g)).unwrap_or(d);
        if v == 0 {
            errs.push(&format!("{path}.{key}"), "must be at least 1".into());
        }
        v.max(1)
    };
    HealthCheck {
        interval,
        fast_interval: fast_interval.min(interval),
        timeout,
        probe,
        failure_threshold: thr(
            |x| x.failure_threshold,
            "failure_threshold",
            DEFAULT_FAILURE_THRESHOLD,
            errs,
        ),
        recovery_threshold: thr(
            |x| x.recovery_threshold,
            "recovery_threshold",
            DEFAULT_RECOVERY_THRESHOLD,
            errs,
        ),
        jitter: jitter.clamp(0.0, 1.0),
    }
}

fn build_retry(r: FileRetry, path: &str, errs: &mut Errors) -> RetryPolicy {
    let d = RetryPolicy::default();
    let tries = r.tries.unwrap_or(d.tries);
    if tries == 0 {
        errs.push(
            &format!("{path}.tries"),
            "must be at least 1 (1 = no retry)".into(),
        );
    }
    let on = match r.on {
        None => d.on,
        Some(list) => {
            let mut on = RetryOn::default();
            for (i, c) in list.iter().enumerate() {
                if let Err(m) = on.add(c) {
                    errs.push(&format!("{path}.on[{i}]"), m);
                }
            }
            on
        }
    };
    RetryPolicy {
        tries: tries.max(1),
        on,
        timeout: r.timeout.map(|t| t.0),
        non_idempotent: r.non_idempotent.unwrap_or(d.non_idempotent),
        buffer: r
            .buffer
            .map_or(d.buffer, |b| b.0.min(usize::MAX as u64) as usize),
    }
}

/// Validates an instance endpoint: an absolute `http://` URL with a host, no
/// credentials, no query or fragment.
pub fn parse_endpoint(raw: &str) -> Result<Endpoint, String> {
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err(format!(
            "endpoint URL is longer than {MAX_ENDPOINT_LEN} characters"
        ));
    }
    let uri: http::Uri = raw
        .parse()
        .map_err(|e| format!("`{raw}` is not a valid URL ({e})"))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| format!("`{raw}` needs a scheme, e.g. `http://{raw}`"))?;
    let default_port = match scheme {
        "http" => HTTP_PORT,
        "https" => HTTPS_PORT,
        other => {
            return Err(format!(
                "`{raw}`: scheme `{other}` is not supported; use http:// or https://"
            ))
        }
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("`{raw}` has no host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "`{raw}` contains credentials; endpoints must not carry a user or password"
        ));
    }
    if auth.host().is_empty() {
        return Err(format!("`{raw}` has no host"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(format!("`{raw}` must not have a query or fragment"));
    }
    let port = auth.port_u16().unwrap_or(default_port);
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        url: raw.to_string(),
        scheme: scheme.to_string(),
        authority: format!("{}:{port}", auth.host()),
        base_path,
    })
}

fn build_routes(
    routes: Vec<(usize, FileRoute)>,
    pools: &BTreeMap<String, Pool>,
    errs: &mut Errors,
) -> Vec<Route> {
    let mut out = vec![];
    let mut seen = HashSet::new();
    for (i, r) in routes {
        let path = format!("routes[{i}]");
        if !r.path_prefix.starts_with('/') {
            errs.push(&format!("{path}.path_prefix"), "must start with `/`".into());
        }
        if !pools.contains_key(&r.pool) {
            let known: Vec<&str> = pools.keys().map(String::as_str).collect();
            errs.push(
                &format!("{path}.pool"),
                format!(
                    "no pool named `{}` (pools: {})",
                    r.pool,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        let host = r.host.map(|h| h.to_ascii_lowercase());
        if !seen.insert((r.path_prefix.clone(), host.clone())) {
            errs.push(
                &format!("{path}.path_prefix"),
                format!("`{}` is routed twice for the same host", r.path_prefix),
            );
        }
        out.push(Route {
            path_prefix: r.path_prefix,
            pool: r.pool,
            strip_prefix: r.strip_prefix.unwrap_or(DEFAULT_STRIP_PREFIX),
            host,
        });
    }
    out
}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(ConfigError {
            path: path.to_string(),
            message,
        });
    }

    fn fail(mut self, path: &str, message: &str) -> ConfigErrors {
        self.push(path, message.to_string());
        ConfigErrors(self.0)
    }

    fn addr(&mut self, path: &str, s: &str) -> Option<SocketAddr> {
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.push(
                    path,
                    format!("`{s}` is not an address like `0.0.0.0:8080` or `[::1]:8080`"),
                );
                None
            }
        }
    }

    /// Deserializes one section, recording its type errors and unknown keys.
    fn section<T: DeserializeOwned>(&mut self, v: Value, path: &str) -> Option<T> {
        let mut unknown = vec![];
        let mut record = |p: serde_ignored::Path| unknown.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(v, &mut record);
        let res: Result<T, _> = serde_path_to_error::deserialize(de);
        for u in unknown {
            self.push(&join(path, &u), "unknown key".into());
        }
        match res {
            Ok(t) => Some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let inner = if inner == "." { String::new() } else { inner };
                self.push(&join(path, &inner), e.into_inner().to_string());
                None
            }
        }
    }
}

fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => rest.to_string(),
        (false, false) if rest.starts_with('[') => format!("{base}{rest}"),
        _ => format!("{base}.{rest}"),
    }
}

fn ignored_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => join(&ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}
