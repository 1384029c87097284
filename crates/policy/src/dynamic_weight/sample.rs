//! [`Sample`]: what the controller is told of one instance after an
//! interval; a leaf that the controller and the score both read.

/// Tries an instance needs in an interval to be judged.
pub const MIN_REQUESTS: u64 = 8;

/// What one instance showed over the last interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Up by active health checks; a down instance gets 0.
    pub healthy: bool,
    /// Tries that ended in the interval (answered, or failed in the
    /// instance's fault).
    pub requests: u64,
    /// Of those, the errors.
    pub errors: u64,
    /// Mean time to response head of the interval's answered tries, ms.
    pub latency_ms: Option<f64>,
    /// Mean requests in flight over the interval (Little's law: tries per
    /// second × mean latency).
    pub in_flight: f64,
    /// Utilisation 0..=1 from a fresh load report (mean of cpu and memory),
    /// if the instance sends them.
    pub utilisation: Option<f64>,
    /// The weight it was balanced with (override, dynamic or configured).
    pub weight: u32,
}

impl Sample {
    /// `errors / requests` (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    pub(super) fn judged(&self) -> bool {
        self.healthy && self.requests >= MIN_REQUESTS && self.latency_ms.is_some()
    }
}
