//! Stage 3: the validated runtime configuration the gateway runs on.
//! Every value here has passed validation; defaults are filled in.

use fulcrum_policy::concurrency_limit::Bounds;
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::passive::PassiveConfig;
use fulcrum_policy::retry::RetryPolicy;
use fulcrum_policy::{Algorithm, Priority, RequestClass};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin: Admin,
    pub limits: Limits,
    /// A caller must send its request head within this, counted from the
    /// connection's accept (or, on a kept-alive connection, from the next
    /// request's first byte). A listener setting, also used by the admin
    /// listener (for the head, and again for the body).
    pub client_header: Duration,
    /// An idle connection is closed after this (a listener setting).
    pub keepalive: Duration,
    /// Self-registration of instances (the video-analysis platform's API).
    pub registry: Registry,
    /// The settings a pool formed by registration gets when no `pools:`
    /// entry of its task type's name exists (global defaults +
    /// `registry.default_algorithm`).
    pub default_pool: Pool,
    /// Pools by name, each with its merged health, passive and timeout settings.
    pub pools: BTreeMap<String, Pool>,
    pub routes: Vec<Route>,
    /// TLS termination on `listen` (HTTP/1.1 and HTTP/2 by ALPN).
    pub tls: Option<ListenerTls>,
    /// The gateway's own listeners (`listen` and `admin.listen`), which no
    /// instance may be: registration refuses them and the data plane does
    /// not connect to them. Not a key of the file: the loader fills in the
    /// configured addresses, and start-up replaces them with the bound
    /// ones (a port of 0 becomes the real port).
    pub own_addrs: Vec<SocketAddr>,
    /// The gateway's own log (`log:`); a start-up setting.
    pub log: LogSettings,
    pub stats: StatsSettings,
    /// `metrics:` — `/metrics` and the per-request counting behind it; a
    /// start-up setting.
    pub metrics: MetricsSettings,
    /// One line per request (`access_log:`); a start-up setting.
    pub access_log: AccessLog,
    /// `shutdown:` — the drain on SIGTERM.
    pub shutdown: ShutdownSettings,
}

/// `shutdown:` — what SIGTERM (or Ctrl-C) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// `shutdown.grace`: in-flight requests and streams may finish within
    /// this; a second signal stops at once.
    pub grace: std::time::Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            grace: crate::defaults::DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// `stats:` — what the admin plane's statistics cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSettings {
    /// `stats.window`: the recent window shown next to the since-start
    /// numbers (a whole number of seconds).
    pub window: Duration,
}

impl Default for StatsSettings {
    fn default() -> Self {
        Self {
            window: crate::defaults::DEFAULT_STATS_WINDOW,
        }
    }
}

/// `metrics:` — Prometheus metrics on the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `metrics.enabled` (default true): when false no request is counted
    /// and `GET /metrics` answers 404.
    pub enabled: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: crate::defaults::DEFAULT_METRICS_ENABLED,
        }
    }
}

/// `access_log:` — one line per request, nginx's `access_log`
/// (docs/ACCESS_LOG.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub target: AccessLogTarget,
    /// `text` (nginx's combined format and more) or `json`.
    pub format: LogFormat,
    /// Lines that may wait for the writer; beyond, lines are dropped.
    pub buffer: u32,
}

/// `access_log.path`: `stdout` (the default), `off`, or a file (appended to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    File(PathBuf),
}

/// `log:` — how the gateway writes its own log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// `log.format`: `text` (one line per event) or `json` (one object per line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// Makes the relative file paths in the config (TLS certificates,
    /// keys and CA files) relative to `dir`, the config file's folder.
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(t) = &mut self.tls {
            fix(&mut t.cert);
            fix(&mut t.key);
        }
        if let AccessLogTarget::File(p) = &mut self.access_log.target {
            fix(p);
        }
        for pool in self.pools.values_mut() {
            if let Some(ca) = &mut pool.tls.ca {
                fix(ca);
            }
        }
    }
}

/// Certificate chain and private key files (PEM) for the proxy listener.
/// Relative paths are resolved against the config file's folder by
/// [`crate::load_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How a pool verifies its `https://` instances: the system's roots plus
/// an optional extra CA file, and optionally a name to verify instead of
/// the endpoint's host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub ca: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// A pool's response cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a stored response is served (shortened by the response's
    /// own `s-maxage`/`max-age`).
    pub ttl: Duration,
    /// Total bytes of stored responses (bodies and headers); LRU beyond.
    pub max_size: u64,
    /// Largest single response stored; bigger ones stream through.
    pub max_entry_size: u64,
    /// Methods whose responses are stored: GET and/or POST.
    pub methods: Vec<http::Method>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub listen: SocketAddr,
    pub token: Option<String>,
    /// Admin connections open at once (more wait in the backlog).
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body: u64,
    pub max_header: u64,
    pub max_connections: u32,
    /// Listen backlog of both listeners.
    pub backlog: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub response_header: Duration,
    pub idle: Duration,
}

/// How an instance is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET path`, healthy on 2xx/3xx.
    Http { path: String },
    /// Connect only.
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub interval: Duration,
    /// For an instance that is down or between states (default interval/4).
    pub fast_interval: Duration,
    pub timeout: Duration,
    pub probe: Probe,
    pub failure_threshold: u32,
    pub recovery_threshold: u32,
    /// Fraction of `interval` by which each probe is randomly shifted (0..=1).
    pub jitter: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Requests that may wait for a free instance; 0 = answer 503 at once.
    pub max: u32,
    pub timeout: Duration,
    /// In-flight slots of the pool that `batch` requests never take: kept
    /// free for `interactive` and `normal` ones, so they need not wait for
    /// a batch request to finish.
    pub reserve: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub algorithm: Algorithm,
    pub instances: Vec<Instance>,
    pub retry: RetryPolicy,
    pub queue: Queue,
    pub health_check: HealthCheck,
    pub passive: PassiveConfig,
    pub timeouts: Timeouts,
    /// Try every instance when all are down instead of failing fast.
    pub panic: bool,
    /// Where `consistent_hash` finds a request's key.
    pub hash_key: Option<HashKey>,
    /// Ramp a recovered or new instance's weight over this long (0 = off).
    pub slow_start: Duration,
    /// Verification of `https://` instances.
    pub tls: UpstreamTls,
    /// Response cache, when configured.
    pub cache: Option<CacheConfig>,
    /// Registered instances whose task type names this pool may join it
    /// (`pools.NAME.registration`; a pool of the file is closed to them by
    /// default). True for the registry's own default pool.
    pub registration: bool,
    /// `dynamic_weights:` (the pool's over the global one); `None` = off.
    pub dynamic_weights: Option<DynamicWeights>,
    /// The pool's `max_concurrent:`, for members that have none of their
    /// own (configured and registered alike).
    pub max_concurrent: Option<Limit>,
}

impl Pool {
    /// The limit of member `i`: its own, or else the pool's.
    pub fn limit_of(&self, i: &Instance) -> Option<Limit> {
        match (i.max_concurrent, i.learned_limit) {
            (Some(n), _) => Some(Limit::Fixed(n)),
            (None, Some(b)) => Some(Limit::Learned(b)),
            (None, None) => self.max_concurrent,
        }
    }
}

/// A `max_concurrent:` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many requests at once.
    Fixed(u32),
    /// Learned from the instance's latency, within these bounds
    /// ([`fulcrum_policy::concurrency_limit`]).
    Learned(Bounds),
}

/// Where a request's key for `consistent_hash` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    /// Lower-cased header name.
    Header(String),
    Cookie(String),
    Query(String),
}

impl std::str::FromStr for HashKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            // A near miss of a kind (`client-ip`, `heder:x`) is named.
            let (kind, name) = s.split_once(':').unwrap_or((s, ""));
            match crate::words::closest(kind, &["client_ip", "header", "cookie", "query"]) {
                Some("client_ip") if name.is_empty() => {
                    format!("`{s}` is not a hash key; did you mean `client_ip`?")
                }
                Some(k) if k != "client_ip" && !name.is_empty() && k != kind => {
                    format!("`{s}` is not a hash key; did you mean `{k}:{name}`?")
                }
                _ => format!(
                    "`{s}` is not a hash key; expected client_ip, header:NAME, cookie:NAME or query:NAME"
                ),
            }
        };
        if s == "client_ip" {
            return Ok(HashKey::ClientIp);
        }
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad());
        }
        match kind {
            "header" => http::HeaderName::from_bytes(name.as_bytes())
                .map(|h| HashKey::Header(h.as_str().to_string()))
                .map_err(|_| format!("`{name}` is not a valid header name")),
            "cookie" => Ok(HashKey::Cookie(name.to_string())),
            "query" => Ok(HashKey::Query(name.to_string())),
            _ => Err(bad()),
        }
    }
}

/// An instance endpoint, already split for the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// As written (without trailing slash normalisation), e.g. `http://10.0.0.5:7901/infer`.
    pub url: String,
    pub scheme: String,
    /// `host:port` (port filled in from the scheme when absent).
    pub authority: String,
    /// Path part without a trailing `/`; empty for the root.
    pub base_path: String,
}

impl Endpoint {
    /// The host as the URL writes it (an IPv6 address in brackets) and the
    /// port, filled in from the scheme when the URL names none.
    pub fn host_port(&self) -> (&str, u16) {
        match self.authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (h, p.parse().unwrap_or(0)),
            _ => (self.authority.as_str(), 0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub endpoint: Endpoint,
    pub weight: u32,
    /// A fixed `max_concurrent: N`.
    pub max_concurrent: Option<u32>,
    /// `max_concurrent: auto` or `{ min, max }`: learned within these
    /// bounds (never together with a fixed limit).
    pub learned_limit: Option<Bounds>,
    pub priority: Priority,
    /// Overrides the pool's probe path for this instance.
    pub health_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path_prefix: String,
    pub pool: String,
    pub strip_prefix: bool,
    /// Lower-cased host without port; `None` matches any host.
    pub host: Option<String>,
    /// The class of its requests in the admission queue (`priority:`; a
    /// request class, not an instance's `Priority` tier).
    pub class: RequestClass,
    /// Whether a request's `X-Fulcrum-Priority` header may set its class
    /// instead (`priority_header:`).
    pub class_header: bool,
    /// `compression:` — answers compressed for callers that accept it;
    /// `None` (the default) sends every answer as the instance wrote it.
    pub compression: Option<Compression>,
}

/// A route's `compression:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Media types compressed, lower-case: `type/subtype` or `type/*`.
    pub types: Vec<String>,
    /// An answer whose `Content-Length` is below this is sent as it is.
    pub min_size: u64,
    /// The codings offered, most preferred first (none twice, at least one).
    pub algorithms: Vec<ContentCoding>,
}

/// A content coding the gateway can apply (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    Zstd,
    Gzip,
}

impl ContentCoding {
    /// The coding named `name` (as the config writes it, any case).
    pub fn from_name(name: &str) -> Option<Self> {
        [ContentCoding::Zstd, ContentCoding::Gzip]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The coding's name in `Accept-Encoding`, `Content-Encoding` and the config.
    pub fn name(self) -> &'static str {
        match self {
            ContentCoding::Zstd => "zstd",
            ContentCoding::Gzip => "gzip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub enabled: bool,
    /// Directory of the embedded store.
    pub path: std::path::PathBuf,
    /// `store: redis`: the Redis the replicas share (registrations,
    /// operator overrides, call counters); `None` = `store: embedded`.
    pub redis: Option<RedisStore>,
    /// A registered instance without a heartbeat for this long is removed.
    pub heartbeat_timeout: Duration,
    /// `POST {route_prefix}{task_type}` goes to that task type's pool.
    pub route_prefix: String,
    /// Required as `Authorization: Bearer …` on registration calls when set.
    pub token: Option<String>,
    /// When non-empty, registered endpoints must be on one of these hosts
    /// (and ports).
    pub allowed_hosts: Vec<AllowedHost>,
    /// Task types one registration may name (each is a pool membership).
    pub max_task_types: usize,
    /// Registrations (endpoints) the registry holds at once.
    pub max_instances: usize,
}

/// `registry.store: redis`: where the shared registry is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStore {
    /// `redis://[user:password@]host:port[/db]` (`registry.redis_url`).
    pub url: String,
    /// Every key the gateway writes starts with this (`registry.redis_prefix`).
    pub prefix: String,
}

/// One `registry.allowed_hosts` entry: `HOST` or `HOST:PORTS`, where HOST
/// is an IP address, a CIDR block or a host name (an IPv6 address or block
/// with ports goes in brackets: `[fd00::/8]:7900-7999`) and PORTS is a
/// port or an inclusive range (`7901`, `7900-7999`). Checked at load, so a
/// bad entry is a config error rather than one that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: HostPattern,
    /// Inclusive port range; `None` admits every port.
    pub ports: Option<(u16, u16)>,
}

/// The host part of an [`AllowedHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// An IP address (a /32 or /128) or a CIDR block: admits an endpoint
    /// whose host is an IP address inside it.
    Net(ipnet::IpNet),
    /// A host name, lower-cased: admits an endpoint that names exactly this
    /// host. It never admits the addresses the name resolves to, nor a
    /// name that merely resolves to an admitted address: names are not
    /// resolved at registration.
    Name(String),
}

impl AllowedHost {
    /// Whether an endpoint on `host` — as its URL writes it: a name, an
    /// IPv4 address or a bracketed IPv6 address — and `port` is admitted.
    pub fn admits(&self, host: &str, port: u16) -> bool {
        if let Some((lo, hi)) = self.ports {
            if port < lo || port > hi {
                return false;
            }
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = bare.parse::<std::net::IpAddr>().ok();
        match (&self.host, ip) {
            (HostPattern::Net(net), Some(ip)) => net.contains(&ip.to_canonical()),
            (HostPattern::Name(name), None) => {
                bare.trim_end_matches('.').eq_ignore_ascii_case(name)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for AllowedHost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, ports) = if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: `[` without a closing `]`"))?;
            if inside.parse::<ipnet::Ipv6Net>().is_err()
                && inside.parse::<std::net::Ipv6Addr>().is_err()
            {
                return Err(format!(
                    "`{s}`: only an IPv6 address or block goes in brackets"
                ));
            }
            match after {
                "" => (inside, None),
                a => (
                    inside,
                    Some(
                        a.strip_prefix(':')
                            .ok_or_else(|| format!("`{s}`: expected `:PORTS` after `]`"))?,
                    ),
                ),
            }
        } else if s.matches(':').count() > 1 {
            // A bare IPv6 address or block: ports need brackets.
            (s, None)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let host = host_pattern(host).map_err(|m| format!("`{s}`: {m}"))?;
        let ports = ports
            .map(|p| port_range(p).map_err(|m| format!("`{s}`: {m}")))
            .transpose()?;
        Ok(AllowedHost { host, ports })
    }
}

fn host_pattern(h: &str) -> Result<HostPattern, String> {
    if h.contains('/') {
        return h
            .parse::<ipnet::IpNet>()
            .map(HostPattern::Net)
            .map_err(|_| format!("`{h}` is not a CIDR block like 10.0.0.0/8 or fd00::/8"));
    }
    if let Ok(ip) = h.parse::<std::net::IpAddr>() {
        return Ok(HostPattern::Net(ipnet::IpNet::from(ip.to_canonical())));
    }
    if h.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{h}` is not an IP address"));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "`{h}` is not a host name, IP address or CIDR block"
        ));
    }
    Ok(HostPattern::Name(name.to_ascii_lowercase()))
}

fn port_range(p: &str) -> Result<(u16, u16), String> {
    let port = |x: &str| x.trim().parse::<u16>().ok().filter(|n| *n > 0);
    let bad = || format!("`{p}` is not a port (1-65535) or an ascending range like 7900-7999");
    let (lo, hi) = match p.split_once('-') {
        Some((a, b)) => (port(a).ok_or_else(bad)?, port(b).ok_or_else(bad)?),
        None => {
            let n = port(p).ok_or_else(bad)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}
