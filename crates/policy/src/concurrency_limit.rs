//! Learned concurrency limits (`max_concurrent: auto`): how many requests
//! an instance may hold at once, learned from its latency, so requests
//! beyond what it can work on in parallel wait in the gateway's admission
//! queue — and go to whichever instance frees first — instead of in one
//! GPU's own queue.
//!
//! Pure: the caller measures each instance over a tick ([`Sample`]), keeps
//! its [`Memory`] between calls, and publishes the limit [`next`] returns.
//!
//! **The signal.** An instance that works on `C` requests at a time and is
//! given `L > C` holds `L − C` of them in its own queue, so by Little's law
//! its mean latency rises to `L / C` times the latency it has without a
//! queue (its *baseline*). The ratio `r = latency / baseline` therefore
//! says how far over its parallelism an instance is, and `L / r` estimates
//! that parallelism: the gradient idea of Netflix's concurrency-limits
//! (`Gradient2Limit`: `limit × rtt_noload / rtt`) and of Envoy's adaptive
//! concurrency filter (`limit × minRTT / sampleRTT`). Both add a headroom
//! term (`√limit`) that keeps a queue of a few requests at the instance;
//! for the small limits of inference servers (a GPU batch of 4) that
//! headroom is as large as the limit, so here there is none: from
//! [`QUEUE_AT`] up the limit drops to `L / r` (at least one lower), below
//! it the limit probes one higher (Vegas-style additive increase). A tick
//! lowers it by at most a third ([`MAX_FALL`]), so one slow tick cannot
//! halve it (Gradient2 smooths its estimate for the same reason). There
//! is deliberately no band in which it holds: a limit held a little above
//! the parallelism would make the queued latency the new baseline and
//! creep up; probing and falling back keeps visiting `C`, where latency is
//! the baseline. An instance of parallelism `C` is held at `C` and `C + 1`
//! (for large `C`, within a tenth of it: one request more is then inside
//! the noise of a tick's mean).
//!
//! **Latency** here is the whole time a request holds its slot, to the
//! last byte of its answer, not the time to its response head: a stream
//! (an LLM's SSE answer) queued at the instance behind another has its
//! head late by a whole stream, so head latency would make one request
//! over capacity look like a ratio of several and cut the limit in half.
//!
//! **The baseline** is the lowest tick mean of the last [`BASELINE_TICKS`]
//! ticks: per-tick means rather than single requests (the fastest request
//! of many is far below what a request usually takes), and a rolling
//! window rather than an all-time minimum, so an instance that became
//! slower for good (a bigger model) gets a new baseline instead of being
//! held at its minimum forever (Envoy re-measures its minRTT for the same
//! reason).
//!
//! **Growth** happens only when the limit was in the way during the tick
//! (requests waited in the admission queue, or on average at least half
//! the limit was in use): an idle instance's limit says nothing about its
//! capacity and must not drift up. From a cold start the limit doubles
//! while latency stays near the baseline (slow start, as in TCP), until
//! the first time it is over the tolerance; then it moves by one.
//!
//! **Errors**: a tick in which at least [`ERROR_SHARE`] of the answers
//! were errors (an overloaded server's 503s, time-outs) lowers the limit by
//! a fifth — fast failures would otherwise look like low latency.
//!
//! The limit is always within the configured bounds.

/// `max_concurrent: auto`'s bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The smallest limit (≥ 1), and the first one.
    pub min: u32,
    /// The largest limit.
    pub max: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { min: 1, max: 256 }
    }
}

impl Bounds {
    fn clamp(&self, l: u32) -> u32 {
        l.clamp(self.min.max(1), self.max.max(self.min.max(1)))
    }
}

/// Latency from this many times the baseline on is a queue at the
/// instance: the limit falls to what the ratio says the instance serves at
/// once. Below it (the noise of tick means) the limit may grow.
pub const QUEUE_AT: f64 = 1.1;
/// A tick lowers the limit by at most `1 / MAX_FALL` of it (at least by
/// one): one slow tick (a long generation, a pause) cannot halve a limit,
/// while a real rise in latency still brings it down within a few ticks.
pub const MAX_FALL: u32 = 3;
/// Ticks whose lowest mean latency is the baseline.
pub const BASELINE_TICKS: usize = 30;
/// A tick with fewer answers than this says nothing (the limit holds).
pub const MIN_ANSWERS: u64 = 4;
/// Error share of a tick's answers that lowers the limit.
pub const ERROR_SHARE: f64 = 0.1;

/// What one instance did during one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Tries that ended during the tick.
    pub tries: u64,
    /// Of those, the ones that failed (5xx, time-outs, refused).
    pub errors: u64,
    /// Tries that gave their slot back during the tick.
    pub answered: u64,
    /// The mean time they held it (pick to the end of the response), ms.
    pub latency_ms: f64,
    /// Mean requests in flight (Little's law: answers per ms × latency).
    pub in_flight: f64,
    /// Whether requests of the instance's pool waited in the admission
    /// queue during the tick (the limit was in the way).
    pub queued: bool,
}

/// One instance's controller state between ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// The limit now.
    pub limit: u32,
    /// Still doubling (no tick over the tolerance yet).
    pub slow_start: bool,
    /// The latest tick means, oldest first (at most [`BASELINE_TICKS`]).
    means: std::collections::VecDeque<f64>,
}

impl Memory {
    /// A new instance starts at the lowest limit, in slow start.
    pub fn new(b: &Bounds) -> Self {
        Self {
            limit: b.clamp(b.min),
            slow_start: true,
            means: Default::default(),
        }
    }

    /// The lowest recent tick mean (ms), once there is one.
    pub fn baseline_ms(&self) -> Option<f64> {
        self.means.iter().copied().reduce(f64::min)
    }
}

/// The limit after a tick, given the tick's sample; updates `m`.
pub fn next(b: &Bounds, s: &Sample, m: &mut Memory) -> u32 {
    m.limit = b.clamp(m.limit);
    let tries = s.tries.max(s.answered);
    if tries >= MIN_ANSWERS && s.errors as f64 >= ERROR_SHARE * tries as f64 {
        m.slow_start = false;
        m.limit = b.clamp(m.limit - m.limit / 5);
        return m.limit;
    }
    if s.answered < MIN_ANSWERS || !s.latency_ms.is_finite() || s.latency_ms <= 0.0 {
        return m.limit;
    }
    if m.means.len() == BASELINE_TICKS {
        m.means.pop_front();
    }
    m.means.push_back(s.latency_ms);
    let base = m.baseline_ms().unwrap_or(s.latency_ms);
    let r = s.latency_ms / base;
    let used = s.queued || s.in_flight * 2.0 >= m.limit as f64;
    m.limit = if r >= QUEUE_AT {
        m.slow_start = false;
        let parallel = (m.limit as f64 / r).round() as u32;
        let floor = m.limit - (m.limit / MAX_FALL).max(1).min(m.limit);
        b.clamp(parallel.max(floor).min(m.limit.saturating_sub(1)))
    } else if used {
        let up = if m.slow_start { m.limit } else { 1 };
        b.clamp(m.limit.saturating_add(up))
    } else {
        m.limit
    };
    m.limit
}

#[cfg(test)]
mod tests;
