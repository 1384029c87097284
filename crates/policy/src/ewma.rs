//! Peak-EWMA latency estimate (Finagle; tower's `PeakEwma`, linkerd's
//! balancer), with time passed in.
//!
//! * An observation slower than the estimate replaces it at once (the
//!   "peak"), so an instance that slows down is avoided immediately.
//! * A faster one is blended in with weight `1 − e^(−Δt/τ)`, so recovery is
//!   believed gradually.
//! * Read at a later time, the estimate decays toward zero with the same
//!   `τ` while nothing is observed. An instance that was avoided because it
//!   was slow therefore looks cheaper as time passes and gets a probe
//!   request again — the way a recovered instance wins its traffic back.
//!
//! A new instance starts at `initial_ms`, not zero: a zero estimate would
//! make the balancer pile every request onto the newcomer (linkerd's
//! comment on the same choice).

/// Decay time constant.
pub const DEFAULT_TAU_MS: f64 = 10_000.0;
/// Starting estimate for an instance never measured.
pub const DEFAULT_INITIAL_MS: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakEwma {
    estimate_ms: f64,
    stamp_ms: u64,
    tau_ms: f64,
    /// The estimate right after the last observation, without decay.
    last_ms: f64,
}

impl PeakEwma {
    pub fn new(initial_ms: f64, tau_ms: f64, now_ms: u64) -> Self {
        let initial = initial_ms.max(0.0);
        Self {
            estimate_ms: initial,
            stamp_ms: now_ms,
            tau_ms: tau_ms.max(1.0),
            last_ms: initial,
        }
    }

    fn decay(&self, now_ms: u64) -> f64 {
        let dt = now_ms.saturating_sub(self.stamp_ms) as f64;
        (-dt / self.tau_ms).exp()
    }

    /// Records one measured latency at `now_ms`. The stored estimate is
    /// first brought to `now_ms` (decayed), so the peak test and the blend
    /// both start from the value the balancer has been seeing.
    pub fn observe(&mut self, rtt_ms: f64, now_ms: u64) {
        let rtt = rtt_ms.max(0.0);
        let w = self.decay(now_ms);
        let current = self.estimate_ms * w;
        self.estimate_ms = if rtt > current {
            rtt
        } else {
            current * w + rtt * (1.0 - w)
        };
        self.last_ms = self.estimate_ms;
        self.stamp_ms = self.stamp_ms.max(now_ms);
    }

    /// The latency to charge an instance that has `in_flight` requests
    /// outstanding. While requests are outstanding, the decay that made an
    /// idle slow instance look cheap is withdrawn: it is charged at least
    /// its estimate as last measured, so one probe cannot turn into a burst
    /// before the probe's answer is in.
    pub fn cost_basis(&self, now_ms: u64, in_flight: u32) -> f64 {
        let decayed = self.get(now_ms);
        if in_flight > 0 {
            decayed.max(self.last_ms)
        } else {
            decayed
        }
    }

    /// The estimate as of `now_ms`.
    pub fn get(&self, now_ms: u64) -> f64 {
        self.estimate_ms * self.decay(now_ms)
    }
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self::new(DEFAULT_INITIAL_MS, DEFAULT_TAU_MS, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_slow_observation_is_taken_at_once() {
        let mut e = PeakEwma::new(10.0, 10_000.0, 0);
        e.observe(200.0, 1);
        assert_eq!(e.get(1), 200.0);
    }

    #[test]
    fn a_fast_observation_is_blended_in() {
        let mut e = PeakEwma::new(200.0, 10_000.0, 0);
        e.observe(10.0, 100);
        let v = e.get(100);
        assert!(v < 200.0 && v > 150.0, "{v}");
    }

    #[test]
    fn an_unobserved_estimate_decays_so_the_instance_is_tried_again() {
        let e = PeakEwma::new(200.0, 10_000.0, 0);
        assert!(e.get(30_000) < 200.0 * 0.06);
    }

    #[test]
    fn observing_after_idle_starts_from_the_decayed_value() {
        let mut e = PeakEwma::new(200.0, 10_000.0, 0);
        let idle = e.get(30_000);
        e.observe(5.0, 30_000);
        assert!(e.get(30_000) <= idle, "a faster answer raised the estimate");
    }

    #[test]
    fn outstanding_requests_withdraw_the_decay() {
        let mut e = PeakEwma::new(30.0, 10_000.0, 0);
        e.observe(200.0, 0);
        assert!(e.cost_basis(60_000, 0) < 1.0, "idle: decayed, gets a probe");
        assert!(
            e.cost_basis(60_000, 1) >= 200.0,
            "probing: charged its last measure"
        );
    }

    proptest! {
        #[test]
        fn a_faster_observation_never_raises_the_estimate(
            start in 1.0f64..1000.0, rtt in 0.0f64..1000.0, idle in 0u64..100_000,
        ) {
            let mut e = PeakEwma::new(start, 10_000.0, 0);
            let before = e.get(idle);
            if rtt <= before {
                e.observe(rtt, idle);
                prop_assert!(e.get(idle) <= before + 1e-9);
            }
        }

        #[test]
        fn the_estimate_stays_within_what_was_seen(
            obs in proptest::collection::vec((0.0f64..1000.0, 0u64..500), 1..50),
        ) {
            let mut e = PeakEwma::new(30.0, 1000.0, 0);
            let mut now = 0;
            let mut hi: f64 = 30.0;
            for (rtt, dt) in obs {
                now += dt;
                e.observe(rtt, now);
                hi = hi.max(rtt);
                let v = e.get(now);
                prop_assert!(v >= 0.0 && v <= hi + 1e-9);
            }
        }
    }
}
