//! State shared by every connection of one mock instance: runtime settings,
//! counters and the capacity semaphore.
//!
//! Everything read on the hot path is an atomic. The latency distribution sits
//! behind an `RwLock`, but a separate `zero_latency` flag lets the common
//! zero-delay case skip the lock entirely. Randomness comes from a counter
//! mixed with the seed, so concurrent requests never contend on a shared RNG
//! while a seeded server still draws a reproducible sequence.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{FailureMode, Latency, MockConfig, MockStats};

pub(crate) struct Shared {
    pub name: String,
    /// `name` as a JSON string literal (quoted and escaped).
    pub name_json: String,
    /// Value of the `x-mock-instance` header.
    pub instance_header: HeaderValue,
    /// An ORCA `endpoint-load-metrics` value added to every answer, if set.
    pub load_report: std::sync::RwLock<Option<HeaderValue>>,
    pub health_ok_body: Bytes,
    pub health_bad_body: Bytes,
    pub error_body: Bytes,
    capacity: Option<Arc<Semaphore>>,
    healthy: AtomicBool,
    mode: AtomicU8,
    zero_latency: AtomicBool,
    latency: RwLock<Latency>,
    error_rate_bits: AtomicU64,
    seed: u64,
    draws: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub health_checks: AtomicU64,
    pub errors: AtomicU64,
    pub connections: AtomicU64,
}

impl Shared {
    pub fn new(cfg: MockConfig) -> Shared {
        let name_json = serde_json::Value::from(cfg.name.as_str()).to_string();
        let instance_header = HeaderValue::from_str(&cfg.name)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-name"));
        let body = |s: String| Bytes::from(s);
        Shared {
            health_ok_body: body(format!(r#"{{"status":"ok","instance":{name_json}}}"#)),
            health_bad_body: body(format!(
                r#"{{"status":"unhealthy","instance":{name_json}}}"#
            )),
            error_body: body(format!(r#"{{"error":"injected","instance":{name_json}}}"#)),
            name_json,
            instance_header,
            load_report: std::sync::RwLock::new(None),
            capacity: cfg.capacity.map(|n| Arc::new(Semaphore::new(n))),
            healthy: AtomicBool::new(cfg.healthy),
            mode: AtomicU8::new(cfg.mode.to_u8()),
            zero_latency: AtomicBool::new(cfg.latency.is_zero()),
            latency: RwLock::new(cfg.latency),
            error_rate_bits: AtomicU64::new(clamp_rate(cfg.error_rate).to_bits()),
            // The mock's one unseeded draw: a server started without a
            // `seed` picks one (and reports it), as the docs promise.
            #[allow(clippy::disallowed_methods)]
            seed: cfg.seed.unwrap_or_else(|| fastrand::u64(..)),
            draws: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            name: cfg.name,
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    pub fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Relaxed);
    }

    pub fn mode(&self) -> FailureMode {
        FailureMode::from_u8(self.mode.load(Relaxed))
    }

    pub fn set_mode(&self, mode: FailureMode) {
        self.mode.store(mode.to_u8(), Relaxed);
    }

    pub fn latency(&self) -> Latency {
        *self.latency.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_latency(&self, l: Latency) {
        let mut guard = self.latency.write().unwrap_or_else(PoisonError::into_inner);
        *guard = l;
        self.zero_latency.store(l.is_zero(), Relaxed);
    }

    pub fn error_rate(&self) -> f64 {
        f64::from_bits(self.error_rate_bits.load(Relaxed))
    }

    pub fn set_error_rate(&self, r: f64) {
        self.error_rate_bits.store(clamp_rate(r).to_bits(), Relaxed);
    }

    /// A fresh generator for one draw sequence; lock-free and reproducible
    /// for a given seed and request order.
    fn rng(&self) -> fastrand::Rng {
        let n = self.draws.fetch_add(1, Relaxed);
        fastrand::Rng::with_seed(splitmix64(self.seed ^ splitmix64(n)))
    }

    /// The delay to apply to the current request.
    pub fn sample_delay(&self) -> Duration {
        if self.zero_latency.load(Relaxed) {
            return Duration::ZERO;
        }
        self.latency().sample(&mut self.rng())
    }

    /// Whether the current request gets an injected error.
    pub fn inject_error(&self) -> bool {
        let rate = self.error_rate();
        if rate <= 0.0 {
            false
        } else if rate >= 1.0 {
            true
        } else {
            self.rng().f64() < rate
        }
    }

    /// Waits for a capacity permit (FIFO) and marks the request in flight.
    pub async fn admit(self: &Arc<Self>) -> InFlight {
        let permit = match &self.capacity {
            // The semaphore is never closed, so acquiring only fails in theory.
            Some(sem) => sem.clone().acquire_owned().await.ok(),
            None => None,
        };
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Relaxed);
        InFlight {
            shared: Arc::clone(self),
            _permit: permit,
        }
    }

    pub fn stats(&self) -> MockStats {
        MockStats {
            requests: self.requests.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
            health_checks: self.health_checks.load(Relaxed),
            errors: self.errors.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }

    /// Zeroes the counters. `in_flight` is a live gauge and is kept; the
    /// high-water mark restarts from it.
    pub fn reset_stats(&self) {
        self.requests.store(0, Relaxed);
        self.health_checks.store(0, Relaxed);
        self.errors.store(0, Relaxed);
        self.connections.store(0, Relaxed);
        self.max_in_flight
            .store(self.in_flight.load(Relaxed), Relaxed);
    }
}

/// Held while a request is processed: owns the capacity permit and keeps
/// `in_flight` accurate even when the request is cancelled (drop guard).
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Relaxed);
    }
}

fn clamp_rate(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0)
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
