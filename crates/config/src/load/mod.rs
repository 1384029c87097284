//! Stage 2: from text to a validated [`Config`], collecting every error.
//!
//! The pipeline is: `${ENV}` expansion → YAML syntax → each section
//! deserialized on its own (so one bad pool does not hide errors in the
//! next) → semantic validation. Every error carries the YAML path of the
//! offending key, e.g. `pools.asr.instances[1].weight`.
//!
//! This file is the pipeline and the top-level keys; each section is
//! validated in its own module, all reporting into the collector of
//! `errors`. The children never import this file.

mod cache;
mod dynamic;
mod endpoints;
mod errors;
mod health;
mod instances;
mod limit;
mod listen;
mod pools;
mod registry;
mod retry;
mod routes;
mod timeouts;
mod tls;

pub use endpoints::parse_endpoint;
pub use errors::{ConfigError, ConfigErrors};
// Defaults once defined here, still reachable as `load::…`.
pub use crate::defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_CACHE_ENTRY, DEFAULT_CACHE_SIZE, DEFAULT_LISTEN, MAX_WEIGHT,
};

use crate::file::*;
use crate::model::*;
use crate::positions::{Positions, Spot};
use crate::units::expand_value;
use crate::words;
use errors::Errors;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

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
    "log",
    "stats",
    "metrics",
    "access_log",
    "shutdown",
    "dynamic_weights",
];
/// Keys from the product specification that this version does not implement yet.
const NOT_YET_TOP: &[&str] = &[];

/// Parses and validates a config file's text. `env` looks up `${NAME}`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let map = read_root(text, env)?;
    let mut errs = Errors::new(Positions::index(text));
    let sections = read_sections(map, &mut errs);
    build(sections, errs)
}

/// The embedded default: proxy on 0.0.0.0:8080, admin on 127.0.0.1:9090, no pools.
pub fn embedded_default() -> Config {
    parse("", &|_| None).expect("the empty config is valid")
}

/// `${ENV}` expansion and YAML syntax: the top-level mapping, or the one
/// error that stops everything.
fn read_root(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Mapping, ConfigErrors> {
    let whole_file = |message| ConfigErrors(vec![ConfigError::whole_file(message)]);
    let mut root: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let mut err = ConfigError::whole_file(format!("invalid YAML: {e}"));
        if let Some(l) = e.location() {
            (err.line, err.column) = (Some(l.line()), Some(l.column()));
        }
        ConfigErrors(vec![err])
    })?;
    let mut failed = vec![];
    expand_value(&mut root, "", env, &mut failed);
    if !failed.is_empty() {
        let at = Positions::index(text);
        return Err(ConfigErrors(
            failed
                .into_iter()
                .map(|(path, message)| {
                    let mut e = ConfigError::new(path, message);
                    e.place(&at, Spot::Value);
                    e
                })
                .collect(),
        ));
    }
    match root {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(Mapping::default()),
        _ => Err(whole_file(
            "the config file must be a mapping of keys such as `listen:` and `pools:`".into(),
        )),
    }
}

/// Every top-level section as read from the file, before validation.
#[derive(Default)]
struct Sections {
    listen: Option<String>,
    admin: FileAdmin,
    health: FileHealth,
    passive: FilePassive,
    timeouts: FileTimeouts,
    limits: FileLimits,
    pools: Vec<(String, FilePool)>,
    routes: Vec<(usize, FileRoute)>,
    registry: FileRegistry,
    tls: Option<FileListenerTls>,
    log: FileLog,
    stats: FileStats,
    metrics: FileMetrics,
    access_log: FileAccessLog,
    shutdown: FileShutdown,
    dynamic: Option<FileDynamicWeights>,
}

/// Deserializes each top-level key on its own; unknown keys are errors.
fn read_sections(map: Mapping, errs: &mut Errors) -> Sections {
    let mut s = Sections::default();
    for (k, v) in map {
        let Some(key) = k.as_str().map(str::to_owned) else {
            errs.push(
                "",
                format!("keys must be text, found {}", words::describe(&k)),
            );
            continue;
        };
        match key.as_str() {
            "listen" => s.listen = errs.section::<String>(v, "listen"),
            "admin" => s.admin = errs.section(v, "admin").unwrap_or_default(),
            "health_check" => s.health = errs.section(v, "health_check").unwrap_or_default(),
            "passive" => s.passive = errs.section(v, "passive").unwrap_or_default(),
            "timeouts" => s.timeouts = errs.section(v, "timeouts").unwrap_or_default(),
            "limits" => s.limits = errs.section(v, "limits").unwrap_or_default(),
            "registry" => s.registry = errs.section(v, "registry").unwrap_or_default(),
            "tls" => s.tls = tls::read_listener_tls(v, errs),
            "log" => s.log = errs.section(v, "log").unwrap_or_default(),
            "stats" => s.stats = errs.section(v, "stats").unwrap_or_default(),
            "metrics" => s.metrics = errs.section(v, "metrics").unwrap_or_default(),
            "access_log" => s.access_log = errs.section(v, "access_log").unwrap_or_default(),
            "shutdown" => s.shutdown = errs.section(v, "shutdown").unwrap_or_default(),
            "dynamic_weights" => s.dynamic = errs.section(v, "dynamic_weights"),
            "pools" => s.pools.extend(pools::read_pools(v, errs)),
            "routes" => s.routes.extend(routes::read_routes(v, errs)),
            other if NOT_YET_TOP.contains(&other) => {
                errs.push_key(other, "not supported by this version of fulcrum yet".into())
            }
            other => errs.push_key(other, words::unknown_key(other, Some(TOP_KEYS))),
        }
    }
    s
}

/// Validates every section, then either the config or every error found.
fn build(s: Sections, mut errs: Errors) -> Result<Config, ConfigErrors> {
    let listen = listen::listen_addr(s.listen.as_deref(), &mut errs);
    let admin = listen::build_admin(s.admin, &mut errs);
    let limits = listen::build_limits(s.limits, &mut errs);
    let client_header = listen::client_header(&s.timeouts, &mut errs);
    let keepalive = listen::keepalive(&s.timeouts, &mut errs);
    let log = LogSettings {
        format: log_format(s.log.format.as_deref(), "log.format", &mut errs),
    };
    let stats = stats_settings(&s.stats, &mut errs);
    let shutdown = shutdown_settings(&s.shutdown, &mut errs);
    let access_log = access_log(s.access_log, &mut errs);

    let globals = pools::Globals {
        health: &s.health,
        passive: &s.passive,
        timeouts: &s.timeouts,
        dynamic: s.dynamic.as_ref(),
    };
    globals.check(&mut errs);
    let mut out_pools = BTreeMap::new();
    for (name, p) in s.pools {
        let pool = pools::build_pool(&name, p, &globals, &mut errs);
        out_pools.insert(name, pool);
    }
    let out_routes = routes::build_routes(s.routes, &out_pools, &mut errs);
    let (registry, default_algorithm) = registry::build_registry(s.registry, &mut errs);
    let default_pool = pools::build_default_pool(default_algorithm, &globals, &mut errs);

    errs.into_result()?;
    let (listen, admin) = (listen.expect("no errors"), admin.expect("no errors"));
    Ok(Config {
        client_header,
        keepalive,
        registry,
        default_pool,
        own_addrs: vec![listen, admin.listen],
        listen,
        admin,
        limits,
        pools: out_pools,
        routes: out_routes,
        tls: s.tls.map(tls::build_listener_tls),
        log,
        stats,
        metrics: MetricsSettings {
            enabled: s
                .metrics
                .enabled
                .unwrap_or(crate::defaults::DEFAULT_METRICS_ENABLED),
        },
        access_log,
        shutdown,
    })
}

/// `text` or `json`, at `key`.
fn log_format(v: Option<&str>, key: &str, errs: &mut Errors) -> LogFormat {
    match v {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            errs.push(
                key,
                words::unknown_value("format", other, &["text", "json"]),
            );
            LogFormat::Text
        }
    }
}

/// `access_log:`: on by default, to stdout, in text (as nginx).
fn access_log(a: FileAccessLog, errs: &mut Errors) -> AccessLog {
    use crate::defaults::{DEFAULT_ACCESS_LOG_BUFFER, MAX_ACCESS_LOG_BUFFER};
    let target = match a.path.as_deref() {
        None | Some("stdout") => AccessLogTarget::Stdout,
        // `off` (YAML 1.1 readers would say `false`).
        Some("off") | Some("false") => AccessLogTarget::Off,
        Some("") => {
            errs.push(
                "access_log.path",
                "must be `stdout`, `off` or a file path".into(),
            );
            AccessLogTarget::Off
        }
        Some(p) => AccessLogTarget::File(p.into()),
    };
    let buffer = a.buffer.unwrap_or(DEFAULT_ACCESS_LOG_BUFFER);
    if !(1..=MAX_ACCESS_LOG_BUFFER).contains(&buffer) {
        errs.push(
            "access_log.buffer",
            format!("must be between 1 and {MAX_ACCESS_LOG_BUFFER} lines"),
        );
    }
    AccessLog {
        target,
        format: log_format(a.format.as_deref(), "access_log.format", errs),
        buffer,
    }
}

/// `shutdown:`: the grace period is at most an hour.
fn shutdown_settings(s: &FileShutdown, errs: &mut Errors) -> ShutdownSettings {
    use crate::defaults::{DEFAULT_SHUTDOWN_GRACE, MAX_SHUTDOWN_GRACE};
    let grace = s.grace.map_or(DEFAULT_SHUTDOWN_GRACE, |d| d.0);
    if grace > MAX_SHUTDOWN_GRACE {
        errs.push(
            "shutdown.grace",
            format!(
                "{grace:?}: at most {}s (a drain that long is a hang)",
                MAX_SHUTDOWN_GRACE.as_secs()
            ),
        );
        return ShutdownSettings::default();
    }
    ShutdownSettings { grace }
}

/// `stats:`: the window is a whole number of seconds within bounds.
fn stats_settings(s: &FileStats, errs: &mut Errors) -> StatsSettings {
    use crate::defaults::{DEFAULT_STATS_WINDOW, MAX_STATS_WINDOW, MIN_STATS_WINDOW};
    let window = s.window.map_or(DEFAULT_STATS_WINDOW, |d| d.0);
    if !(MIN_STATS_WINDOW..=MAX_STATS_WINDOW).contains(&window) || window.subsec_nanos() != 0 {
        errs.push(
            "stats.window",
            format!(
                "{window:?}: must be a whole number of seconds from {}s to {}s",
                MIN_STATS_WINDOW.as_secs(),
                MAX_STATS_WINDOW.as_secs()
            ),
        );
        return StatsSettings::default();
    }
    StatsSettings { window }
}
