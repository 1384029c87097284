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
use http::{Method, StatusCode, Uri};
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
    /// Served from the response cache.
    pub cache_hit: bool,
}

/// A request being served; finishes its record when dropped.
#[derive(Debug)]
pub struct Pending {
    record: Record,
    observer: Option<Arc<dyn Observer>>,
}

impl Pending {
    pub fn new(observer: Arc<dyn Observer>, started: Instant, method: Method, uri: Uri) -> Self {
        Self {
            record: Record {
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
                cache_hit: false,
            },
            observer: Some(observer),
        }
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
        Pending {
            record: self.record.clone(),
            observer: self.observer.take(),
        }
    }

    /// The response ended this way; the record is finished now.
    pub fn finish(mut self, outcome: Outcome) {
        self.record.outcome = outcome;
        self.emit();
    }

    fn emit(&mut self) {
        if let Some(o) = self.observer.take() {
            self.record.total = Some(self.record.started.elapsed());
            o.request_done(&self.record);
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
            cache_hit = r.cache_hit,
        );
    }
}
