//! One record per request: when it started, which pool and instance served
//! it, how many tries it took and why the last retry happened, when the
//! response head left, how it ended and who was to blame. The record
//! finishes itself when dropped — by the request when the gateway answered
//! on its own, or by the response body's completion handle when the body
//! ended or was dropped — and hands itself to an [`Observer`] (the access
//! log and metrics of the next layers).
//!
//! Access logging as a phase, not a side effect (pingora's `logging()`
//! callback, linkerd's `http/access-log`).

use crate::http::Blame;
use crate::runtime::{InstanceState, PoolRuntime};
use fulcrum_policy::retry::Failure;
use fulcrum_policy::RequestClass;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Receives every finished request record.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn request_done(&self, record: &Record);
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer (a gateway-made one included) was sent to its end.
    Complete,
    /// The response body failed or stalled after the head was sent.
    BodyFailed,
    /// The caller went away before the answer ended.
    Dropped,
}

/// What the pool's response cache did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheStatus {
    /// The pool has no cache (or the request never reached one).
    #[default]
    None,
    /// Answered from the cache.
    Hit,
    /// Looked up, not found: the answer came from an instance.
    Miss,
    /// The pool has a cache, but this request may not use it (method,
    /// `no-store`, a streamed or large body, a WebSocket).
    Bypass,
}

/// The last try's timings, as nginx's `$upstream_connect_time`,
/// `$upstream_header_time` and `$upstream_response_time`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamTimes {
    /// When the last try was sent, counted from the request's arrival.
    pub sent: Option<Duration>,
    /// Opening its connection: zero on a pooled one, `None` when no
    /// connection was made.
    pub connect: Option<Duration>,
    /// From sending to the response head.
    pub head: Option<Duration>,
    /// From sending to the end of the response body (or of the WebSocket),
    /// set when the record is finished.
    pub response: Option<Duration>,
}

/// One request, from arrival to the end of its response body.
#[derive(Debug, Clone)]
pub struct Record {
    pub started: Instant,
    pub method: Method,
    pub uri: Uri,
    pub pool: Option<Arc<PoolRuntime>>,
    /// The instance that gave the answer (or was tried last).
    pub instance: Option<Arc<InstanceState>>,
    /// Its position in `pool.members` (its membership's counters).
    pub member: Option<usize>,
    /// Tries made (0 when no instance was tried: cache hit, 4xx, no route).
    pub tries: u32,
    /// Why the last retry happened, when there was one.
    pub retried_on: Option<Failure>,
    pub status: Option<StatusCode>,
    /// When the response head was ready to go to the caller.
    pub head_after: Option<Duration>,
    /// From arrival to the end of the response (set when finished).
    pub total: Option<Duration>,
    pub outcome: Outcome,
    /// Who caused a failed request (`None` when it succeeded).
    pub blame: Option<Blame>,
    /// The caller's address (`None` outside a listener).
    pub client: Option<SocketAddr>,
    pub version: Version,
    /// The request's `X-Request-Id` (the caller's or the one made for it).
    pub request_id: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    /// Request body bytes received from the caller (client to instance,
    /// for a WebSocket).
    pub bytes_in: u64,
    /// Response body bytes sent to the caller (instance to client, for a
    /// WebSocket).
    pub bytes_out: u64,
    pub cache: CacheStatus,
    /// The request's class in its pool's queue, once routed.
    pub class: Option<RequestClass>,
    /// The last try's timings.
    pub upstream: UpstreamTimes,
}

impl Record {
    /// A request that has only arrived.
    pub fn new(started: Instant, method: Method, uri: Uri) -> Self {
        Record {
            started,
            method,
            uri,
            pool: None,
            instance: None,
            member: None,
            tries: 0,
            retried_on: None,
            status: None,
            head_after: None,
            total: None,
            outcome: Outcome::Dropped,
            blame: None,
            client: None,
            version: Version::HTTP_11,
            request_id: None,
            referer: None,
            user_agent: None,
            bytes_in: 0,
            bytes_out: 0,
            cache: CacheStatus::None,
            class: None,
            upstream: UpstreamTimes::default(),
        }
    }

    /// What a [`Pending`] keeps once its record is handed on (never read).
    fn blank(started: Instant) -> Self {
        Self::new(started, Method::GET, Uri::default())
    }
}

/// A request being served; finishes its record when dropped.
#[derive(Debug)]
pub struct Pending {
    record: Record,
    observer: Option<Arc<dyn Observer>>,
    /// A streamed request body's byte count, added to `bytes_in` when the
    /// record is finished.
    body_in: Option<Arc<AtomicU64>>,
}

impl Pending {
    pub fn new(observer: Arc<dyn Observer>, started: Instant, method: Method, uri: Uri) -> Self {
        Self {
            record: Record::new(started, method, uri),
            observer: Some(observer),
            body_in: None,
        }
    }

    /// Who asked and how: the caller's address, the protocol, the request
    /// id and the headers the access log shows (cheap refcounted clones).
    pub fn caller(
        &mut self,
        client: SocketAddr,
        version: Version,
        rid: &HeaderValue,
        h: &HeaderMap,
    ) {
        let r = &mut self.record;
        r.client = Some(client);
        r.version = version;
        r.request_id = Some(rid.clone());
        r.referer = h.get(header::REFERER).cloned();
        r.user_agent = h.get(header::USER_AGENT).cloned();
    }

    /// The request body streams on: its bytes are counted into `n` as
    /// they are read from the caller.
    pub fn count_in(&mut self, n: Arc<AtomicU64>) {
        self.body_in = Some(n);
    }

    /// The current try was sent at `at`: its timings start afresh.
    pub fn sent(&mut self, at: Instant) {
        self.record.upstream = UpstreamTimes {
            sent: Some(at.saturating_duration_since(self.record.started)),
            ..UpstreamTimes::default()
        };
    }

    /// The current try's response head came `head` after it was sent, on
    /// a connection that took `connect` to open (zero when pooled).
    pub fn answered(&mut self, connect: Duration, head: Duration) {
        let u = &mut self.record.upstream;
        u.connect = Some(connect);
        u.head = Some(head);
    }

    pub fn record(&mut self) -> &mut Record {
        &mut self.record
    }

    /// The request was routed to `pool`.
    pub fn routed(&mut self, pool: &Arc<PoolRuntime>) {
        if self.record.pool.is_none() {
            self.record.pool = Some(pool.clone());
        }
    }

    /// A try is starting on member `slot` of `pool`.
    pub fn tried(&mut self, pool: &Arc<PoolRuntime>, slot: usize) {
        self.routed(pool);
        let r = &mut self.record;
        r.instance = Some(pool.members[slot].inst.clone());
        r.member = Some(slot);
        r.tries += 1;
    }

    /// The last try failed this way and another follows.
    pub fn retrying(&mut self, failure: Failure) {
        self.record.retried_on = Some(failure);
    }

    /// The response head is ready: its status, and who is to blame if it
    /// is a failure the gateway made.
    pub fn head(&mut self, status: StatusCode, blame: Option<Blame>) {
        let r = &mut self.record;
        r.status = Some(status);
        r.blame = blame;
        r.head_after = Some(r.started.elapsed());
    }

    /// Hands the record over to whoever finishes it (the response body's
    /// completion handle), leaving an inert one behind.
    pub fn hand_over(&mut self) -> Pending {
        let blank = Record::blank(self.record.started);
        Pending {
            record: std::mem::replace(&mut self.record, blank),
            observer: self.observer.take(),
            body_in: self.body_in.take(),
        }
    }

    /// The response ended this way; the record is finished now.
    pub fn finish(mut self, outcome: Outcome) {
        self.record.outcome = outcome;
        self.emit();
    }

    fn emit(&mut self) {
        if let Some(o) = self.observer.take() {
            let r = &mut self.record;
            let total = r.started.elapsed();
            r.total = Some(total);
            if let Some(n) = &self.body_in {
                r.bytes_in += n.load(Relaxed);
            }
            let u = &mut r.upstream;
            if let (Some(sent), Some(_)) = (u.sent, u.head) {
                u.response = Some(total.saturating_sub(sent));
            }
            o.request_done(r);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Not finished explicitly: the caller went away (the outcome stays
        // `Dropped`), unless it was already handed over.
        self.emit();
    }
}

/// Hands each record to several observers in turn (the metrics and the
/// access log), in the order given.
#[derive(Debug, Default)]
pub struct Fanout(pub Vec<Arc<dyn Observer>>);

impl Observer for Fanout {
    fn request_done(&self, record: &Record) {
        for o in &self.0 {
            o.request_done(record);
        }
    }
}

/// The default observer: one `debug` event per request on the
/// `fulcrum::access` target.
#[derive(Debug, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn request_done(&self, r: &Record) {
        tracing::debug!(
            target: "fulcrum::access",
            method = %r.method,
            uri = %r.uri,
            pool = r.pool.as_ref().map_or("-", |p| p.cfg.name.as_str()),
            instance = r.instance.as_ref().map_or("-", |i| i.endpoint.url.as_str()),
            status = r.status.map_or(0, |s| s.as_u16()),
            tries = r.tries,
            head_ms = r.head_after.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            total_ms = r.total.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            outcome = ?r.outcome,
            blame = ?r.blame,
            cache_hit = r.cache == CacheStatus::Hit,
        );
    }
}
