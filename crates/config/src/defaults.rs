//! Every default value and fixed limit of the config, in one place.
//!
//! A setting left out of the YAML file takes the value named here; the
//! bounds checked by validation are here too. [`crate::load`] is the only
//! reader. The retry defaults (`tries`, `on`, `buffer`, `non_idempotent`)
//! are those of [`fulcrum_policy::retry::RetryPolicy::default`], which
//! owns them.

use fulcrum_policy::{Algorithm, Priority, RequestClass};
use std::time::Duration;

// --- listeners -------------------------------------------------------

/// `listen:` — the proxy listener.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// `admin.listen:` — the admin API, on loopback only unless configured.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

// --- limits ----------------------------------------------------------

/// `limits.max_body:` — largest request body accepted (64 MiB).
pub const DEFAULT_MAX_BODY: u64 = 64 << 20;
/// `limits.max_header:` — largest request head accepted (32 KiB).
pub const DEFAULT_MAX_HEADER: u64 = 32 << 10;
/// Smallest `limits.max_header:` accepted (8 KiB).
pub const MIN_MAX_HEADER: u64 = 8 << 10;
/// `limits.max_connections:` — client connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 65_536;
/// `limits.backlog:` — connections the kernel queues, handshake done, until
/// a listener accepts them (both listeners; Linux caps it at
/// `net.core.somaxconn`, 4096 by default). The old fixed 128 made a burst
/// of connects wait for SYN retransmits (1 s and more).
pub const DEFAULT_BACKLOG: u32 = 1024;
/// Largest `limits.backlog:` accepted (the kernel's own ceiling is lower).
pub const MAX_BACKLOG: u32 = 65_535;
/// `admin.max_connections:` — admin connections open at once. Beyond it,
/// connects wait in the backlog; it also keeps the descriptors the admin
/// listener can take small, so stalled admin callers cannot starve the proxy.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: u32 = 256;

// --- access log ------------------------------------------------------

/// `access_log.buffer:` — lines waiting for the access log's writer; more
/// are dropped (and counted) rather than slow a request.
pub const DEFAULT_ACCESS_LOG_BUFFER: u32 = 8192;
/// Largest `access_log.buffer:` accepted.
pub const MAX_ACCESS_LOG_BUFFER: u32 = 1 << 20;

// --- timeouts --------------------------------------------------------

/// `timeouts.client_header:` — a caller must send its request head within this.
pub const DEFAULT_CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `timeouts.keepalive:` — an idle connection (HTTP/1.1 between requests,
/// HTTP/2 with no open stream) is closed after this (nginx: 75 s).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// `timeouts.connect:` — connecting to an instance.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `timeouts.response_header:` — an instance's response head, after the request is sent.
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// `timeouts.idle:` — no bytes on a request or response body for this long.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

// --- passive health ----------------------------------------------------

/// `passive.max_fails:` — failures within `fail_timeout` that mark an instance down.
pub const DEFAULT_MAX_FAILS: u32 = 2;
/// `passive.fail_timeout:` — the failure window (and the first ejection's length).
pub const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(30);
/// `passive.max_ejection_percent:` — the largest share of a pool's members
/// passive ejection may hold out at once (rounded down; and never the last
/// member in service). Half, not Envoy's 10 %: inference pools are small,
/// and 10 % of 2–9 instances is none, while Envoy then ejects one anyway,
/// which for a pool of 2 is half. Up to half lets a pool of 2 or 3 set one
/// bad instance aside and a pool of 4 two, while the other half — which
/// takes the ejected ones' traffic — stays: beyond it, each remaining
/// instance would carry more than twice its load, and failures caused by
/// that overload would eject those too, emptying the pool (issue #11).
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 50;
/// Largest `passive.max_ejection_percent:`.
pub const MAX_EJECTION_PERCENT: u32 = 100;

// --- active health checks ----------------------------------------------

/// `health_check.path:` — the probe's `GET` path (`tcp` for connect-only).
pub const DEFAULT_HEALTH_PATH: &str = "/health";
/// `health_check.interval:` — between probes of a healthy instance.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// `health_check.fast_interval:` defaults to `interval` divided by this.
pub const FAST_INTERVAL_DIVISOR: u32 = 4;
/// `health_check.timeout:` — one probe.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// `health_check.jitter:` — fraction of `interval` each probe is randomly shifted by.
pub const DEFAULT_JITTER: f64 = 0.1;
/// `health_check.failure_threshold:` — failed probes in a row that mark an instance down.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// `health_check.recovery_threshold:` — passed probes in a row that bring it back.
pub const DEFAULT_RECOVERY_THRESHOLD: u32 = 2;

// --- pools and instances -----------------------------------------------

/// A pool's `algorithm:`.
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::RoundRobin;
/// An instance's `weight:`.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Largest accepted instance weight (keeps weight arithmetic far from overflow).
pub const MAX_WEIGHT: u32 = 1_000_000;
/// An instance's `priority:`.
pub const DEFAULT_PRIORITY: Priority = Priority::Normal;
/// A pool's `queue.max:` — requests that may wait for a free instance.
pub const DEFAULT_QUEUE_MAX: u32 = 1000;
/// A pool's `queue.timeout:` — how long a request may wait.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// A pool's `queue.reserve:` — no slot is kept from `batch` requests.
pub const DEFAULT_QUEUE_RESERVE: u32 = 0;
/// A pool's `slow_start:` — off.
pub const DEFAULT_SLOW_START: Duration = Duration::ZERO;
/// A pool's `panic:` — fail fast when every instance is down.
pub const DEFAULT_PANIC: bool = false;
/// `dynamic_weights.interval:` bounds (the defaults of `interval`, `max`
/// and `max_step` are those of
/// [`fulcrum_policy::dynamic_weight::DynamicWeights::default`], which owns
/// them: 60 s, 1000, 0.3).
pub const MIN_DYNAMIC_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_DYNAMIC_INTERVAL: Duration = Duration::from_secs(3600);
/// Smallest `dynamic_weights.max:` (the smallest weight is 1).
pub const MIN_DYNAMIC_MAX: u32 = 2;
/// Largest `dynamic_weights.max_step:` (a weight may double in an interval).
pub const MAX_DYNAMIC_STEP: f64 = 1.0;
/// A pool's `registration:` — registered instances may not join a pool
/// of the config file unless it says so.
pub const DEFAULT_POOL_REGISTRATION: bool = false;

// --- endpoints -----------------------------------------------------------

/// Port of an `http://` endpoint that names none.
pub const HTTP_PORT: u16 = 80;
/// Port of an `https://` endpoint that names none.
pub const HTTPS_PORT: u16 = 443;
/// Longest accepted endpoint URL, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;

// --- response cache ------------------------------------------------------

/// `cache.ttl:` — how long a stored response is served.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Default `cache.max_size` (256 MiB).
pub const DEFAULT_CACHE_SIZE: u64 = 256 << 20;
/// Default `cache.max_entry_size` (8 MiB, or `max_size`, if smaller).
pub const DEFAULT_CACHE_ENTRY: u64 = 8 << 20;
/// `cache.methods:` — methods whose responses are stored.
pub const DEFAULT_CACHE_METHODS: &[&str] = &["GET"];

// --- routes --------------------------------------------------------------

/// A route's `strip_prefix:` — the path is forwarded as received.
pub const DEFAULT_STRIP_PREFIX: bool = false;
/// A route's `priority:` — the class of its requests in the queue.
pub const DEFAULT_ROUTE_CLASS: RequestClass = RequestClass::Normal;
/// A route's `priority_header:` — callers may choose their class with
/// `X-Fulcrum-Priority`.
pub const DEFAULT_PRIORITY_HEADER: bool = true;

// --- response compression (a route's `compression:`, off by default) -----

/// `compression.types:` — the seed's nginx `gzip_types` (JSON, text, CSS,
/// JavaScript, XML) plus HTML, server-sent events (text that compresses
/// well; flushed event by event) and NDJSON streams. Audio, images, video
/// and archives are already compressed and are never in this list.
pub const DEFAULT_COMPRESSION_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/javascript",
    "application/xml",
    "text/plain",
    "text/html",
    "text/css",
    "text/javascript",
    "text/xml",
    "text/event-stream",
];
/// `compression.min_size:` — smaller answers are sent as they are (nginx's
/// `gzip_min_length 1024` in the seed): below it, the coding's own framing
/// and the CPU cost outweigh what it saves.
pub const DEFAULT_COMPRESSION_MIN_SIZE: u64 = 1 << 10;
/// `compression.algorithms:` — zstd first (smaller and cheaper than gzip
/// where the caller accepts both), gzip for every other caller.
pub const DEFAULT_COMPRESSION_ALGORITHMS: &[&str] = &["zstd", "gzip"];

// --- registry ------------------------------------------------------------

/// `registry.enabled:`.
pub const DEFAULT_REGISTRY_ENABLED: bool = true;
/// `registry.path:` — directory of the embedded store.
pub const DEFAULT_REGISTRY_PATH: &str = "./fulcrum-data";
/// `registry.redis_prefix`: every Redis key the replicas share starts with it.
pub const DEFAULT_REDIS_PREFIX: &str = "fulcrum:";
/// `registry.heartbeat_timeout:` — a registered instance silent this long is removed.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);
/// `registry.route_prefix:` — `POST {prefix}{task_type}` goes to that task type's pool.
pub const DEFAULT_ROUTE_PREFIX: &str = "/infer/";
/// `registry.default_algorithm:` — for pools formed by registration.
/// `response_time`, not the platform's `least_calls`: a registered
/// service that slows down keeps a counting rule's share and, in a closed
/// loop, holds every caller (docs/SIMULATION.md, `registry_default`:
/// p99 3.3 s against 61 ms); `least_calls` stays selectable.
pub const DEFAULT_REGISTRY_ALGORITHM: Algorithm = Algorithm::ResponseTime;
/// `registry.max_task_types:` — task types one registration may name.
pub const DEFAULT_REGISTRY_MAX_TASK_TYPES: usize = 16;
/// `registry.max_instances:` — registrations the registry holds at once.
pub const DEFAULT_REGISTRY_MAX_INSTANCES: usize = 1024;

// --- shutdown ------------------------------------------------------------

/// `shutdown.grace:` — how long in-flight requests and streams may take
/// to finish after SIGTERM before the gateway closes them.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Longest `shutdown.grace:`.
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(3600);

// --- stats ---------------------------------------------------------------

/// `stats.window:` — the recent window of `/api/v1/pools` and `fulcrum
/// stats`, next to the since-start numbers.
pub const DEFAULT_STATS_WINDOW: Duration = Duration::from_secs(60);
/// Shortest `stats.window:` (its twelve slots are then 1 s / 12 each).
pub const MIN_STATS_WINDOW: Duration = Duration::from_secs(1);
/// Longest `stats.window:`.
pub const MAX_STATS_WINDOW: Duration = Duration::from_secs(3600);
/// `metrics.enabled:` — `/metrics` on the admin listener, and the
/// per-request counting behind it.
pub const DEFAULT_METRICS_ENABLED: bool = true;
