//! What the simulator simulates: instances and the clients' workload.
//!
//! An instance is modelled the way an inference server behaves: it works on
//! at most `capacity` requests at once (a GPU's batch slots) and queues the
//! rest FIFO inside itself, so the response time the gateway measures is the
//! wait in that queue plus the sampled service time. The gateway-side limit
//! `max_concurrent` is separate: it is what the real gateway is configured
//! with, and above it requests wait in the gateway's admission queue.
//!
//! The workload is closed-loop: each client sends its next request when the
//! previous one has completed (plus an optional think time), the way a fleet
//! of devices or workers drives an inference service. Closed loops give the
//! feedback that matters for balancing — a slow instance holds its clients.

use fulcrum_policy::concurrency_limit::Bounds;
use fulcrum_policy::dynamic_weight::DynamicWeights;
use fulcrum_policy::{Priority, RequestClass};

/// How long an instance takes to process one request (excluding any wait
/// in its internal queue), sampled independently per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyModel {
    /// Always this many milliseconds.
    Fixed(f64),
    /// Uniform between the two bounds, in milliseconds.
    Uniform(f64, f64),
    /// Log-normal: `median_ms · e^(sigma · N(0,1))`; a long right tail, the
    /// usual shape of inference latencies. `sigma` 0.5 gives p99 ≈ 3.2 ×
    /// median.
    LogNormal { median_ms: f64, sigma: f64 },
}

impl LatencyModel {
    /// One service time in milliseconds (never negative).
    pub fn sample_ms(&self, rng: &mut fastrand::Rng) -> f64 {
        let ms = match *self {
            LatencyModel::Fixed(ms) => ms,
            LatencyModel::Uniform(lo, hi) => lo + (hi - lo) * rng.f64(),
            LatencyModel::LogNormal { median_ms, sigma } => {
                // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
                let u1 = 1.0 - rng.f64();
                let u2 = rng.f64();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ms * (sigma * z).exp()
            }
        };
        ms.max(0.0)
    }
}

/// One modelled instance of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceModel {
    pub name: String,
    pub weight: u32,
    pub priority: Priority,
    /// The gateway's limit on requests in flight to it (`None` = unlimited).
    pub max_concurrent: Option<u32>,
    /// Requests the instance processes at once; beyond, they queue FIFO
    /// inside the instance. At least 1.
    pub capacity: usize,
    pub latency: LatencyModel,
    /// Probability that a processed request fails (a 5xx after the service
    /// time). Counted as failed, fed into the instance's error-rate average.
    pub error_rate: f64,
    /// Unreachable / unhealthy from `t0` (inclusive) to `t1` (exclusive),
    /// virtual milliseconds: the gateway does not choose it (`usable =
    /// false`). Requests it already holds finish normally (a drain).
    pub down_between: Option<(u64, u64)>,
    /// From `t0` (inclusive) to `t1` (exclusive), virtual milliseconds, a
    /// request that starts service takes `factor` times its sampled time
    /// (a GPU falling back to the CPU, then recovering).
    pub slow_between: Option<(u64, u64, f64)>,
}

impl InstanceModel {
    /// Weight 1, priority normal, capacity 1, no limit, no errors, no outage.
    pub fn new(name: impl Into<String>, latency: LatencyModel) -> Self {
        Self {
            name: name.into(),
            weight: 1,
            priority: Priority::Normal,
            max_concurrent: None,
            capacity: 1,
            latency,
            error_rate: 0.0,
            down_between: None,
            slow_between: None,
        }
    }

    pub fn weight(self, weight: u32) -> Self {
        Self { weight, ..self }
    }

    pub fn priority(self, priority: Priority) -> Self {
        Self { priority, ..self }
    }

    pub fn max_concurrent(self, max: u32) -> Self {
        Self {
            max_concurrent: Some(max),
            ..self
        }
    }

    pub fn capacity(self, capacity: usize) -> Self {
        Self { capacity, ..self }
    }

    pub fn error_rate(self, error_rate: f64) -> Self {
        Self { error_rate, ..self }
    }

    pub fn down_between(self, t0_ms: u64, t1_ms: u64) -> Self {
        Self {
            down_between: Some((t0_ms, t1_ms)),
            ..self
        }
    }

    pub fn slow_between(self, t0_ms: u64, t1_ms: u64, factor: f64) -> Self {
        Self {
            slow_between: Some((t0_ms, t1_ms, factor)),
            ..self
        }
    }

    /// One service time, in milliseconds, for a request starting at
    /// virtual time `now_ms` (one draw of `rng` whether slow or not, so
    /// the instance's later requests take as long either way).
    pub fn service_ms(&self, now_ms: u64, rng: &mut fastrand::Rng) -> f64 {
        let ms = self.latency.sample_ms(rng);
        match self.slow_between {
            Some((t0, t1, factor)) if t0 <= now_ms && now_ms < t1 => ms * factor,
            _ => ms,
        }
    }

    /// Whether the instance is down at virtual time `now_ms`.
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_between
            .is_some_and(|(t0, t1)| t0 <= now_ms && now_ms < t1)
    }
}

/// The classes a workload's clients send, and the pool's `queue.reserve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMix {
    /// Client `i` behaves as `clients[i % len]`.
    pub clients: Vec<ClientClass>,
    /// Slots a `batch` request never takes (`queue.reserve`).
    pub reserve: u32,
}

/// One kind of client: the class of its requests, and its pause between
/// an answer and its next request (on top of the workload's `think_ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientClass {
    pub class: RequestClass,
    pub think: LatencyModel,
}

impl ClassMix {
    /// Client `i`'s kind (`normal`, no pause, when the mix is empty).
    pub fn client(&self, i: usize) -> ClientClass {
        self.clients
            .get(i % self.clients.len().max(1))
            .copied()
            .unwrap_or(ClientClass {
                class: RequestClass::Normal,
                think: LatencyModel::Fixed(0.0),
            })
    }
}

/// When the clients stop sending. Requests already sent always finish (or
/// time out), so every request sent is counted as served or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No request is sent at or after this virtual time (milliseconds).
    AfterMs(u64),
    /// This many requests in total, over all clients.
    AfterRequests(u64),
}

/// The traffic offered to the pool, and the gateway's admission queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Closed-loop clients, each with at most one request outstanding.
    pub clients: usize,
    pub stop: Stop,
    /// Pause between a response and the client's next request.
    pub think_ms: f64,
    /// Client `i` sends its first request at `i · ramp_ms / clients`
    /// (0 = all at once).
    pub ramp_ms: f64,
    /// Number of distinct hash keys (device ids, say): client `i` always
    /// sends key `i % keys`. `None` = requests carry no key.
    pub keys: Option<usize>,
    /// Requests that may wait in the gateway's admission queue when every
    /// usable instance is at `max_concurrent` (0 = answer 503 at once).
    pub queue_max: usize,
    /// How long one may wait there before the gateway answers 503.
    pub queue_timeout_ms: u64,
    /// Extra pause after a failed request (a client's back-off). A failure
    /// that took no time is followed by at least 1 ms, so a pool that is
    /// entirely down cannot make the clients spin at one instant.
    pub fail_pause_ms: f64,
    pub seed: u64,
    /// The pool's `dynamic_weights:` (`None` = off).
    pub dynamic_weights: Option<DynamicWeights>,
    /// `max_concurrent: auto` on every instance, within these bounds
    /// (`None` = off: the models' own `max_concurrent`).
    pub learned_limits: Option<Bounds>,
    /// Request classes and `queue.reserve` (`None`: every request
    /// `normal`, no reserve).
    pub classes: Option<ClassMix>,
}

impl Workload {
    /// `clients` clients with no think time, no keys, the gateway's default
    /// queue (1000 requests, 5 s), a 100 ms back-off after failures, seed 1.
    pub fn new(clients: usize, stop: Stop) -> Self {
        Self {
            clients,
            stop,
            think_ms: 0.0,
            ramp_ms: 0.0,
            keys: None,
            queue_max: 1000,
            queue_timeout_ms: 5_000,
            fail_pause_ms: 100.0,
            seed: 1,
            dynamic_weights: None,
            learned_limits: None,
            classes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_median_is_the_median() {
        let m = LatencyModel::LogNormal {
            median_ms: 50.0,
            sigma: 0.5,
        };
        let mut rng = fastrand::Rng::with_seed(3);
        let below = (0..20_000).filter(|_| m.sample_ms(&mut rng) < 50.0).count();
        assert!((9_600..10_400).contains(&below), "{below}");
    }

    #[test]
    fn down_window_is_half_open() {
        let i = InstanceModel::new("a", LatencyModel::Fixed(1.0)).down_between(10, 20);
        assert!(!i.is_down(9) && i.is_down(10) && i.is_down(19) && !i.is_down(20));
    }
}
