//! The live estimates an algorithm reads of an instance, and the one place
//! their constants are defined: the peak-EWMA latency and the error-rate
//! average ([`Estimates`], fed by [`Estimates::observe`] after every try and
//! read by [`Estimates::cost`] at every choice), and the rule for when an
//! ORCA load report is still [`fresh`].
//!
//! Use it wherever tries are measured: the data plane keeps one
//! `Estimates` per instance behind its lock, the simulator one per
//! modelled instance, so both update and read them the same way. The
//! latency estimate is [`crate::ewma::PeakEwma`] (Finagle, linkerd); the
//! error rate is a plain exponentially weighted average of 0/1 outcomes,
//! with [`ERROR_ALPHA`] the weight of the newest; the load-report lifetime
//! follows the ORCA practice of treating a silent instance's last report as
//! stale after a while (gRPC's weighted round robin expires them too).

use crate::ewma::PeakEwma;

/// Weight of one new outcome in the error-rate average.
pub const ERROR_ALPHA: f64 = 0.1;
/// How long a load report stays valid without a newer one.
pub const LOAD_REPORT_TTL_MS: u64 = 30_000;

/// Whether a load report received at `report_at_ms` may still be used at
/// `now_ms` (younger than [`LOAD_REPORT_TTL_MS`]).
pub fn fresh(report_at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(report_at_ms) < LOAD_REPORT_TTL_MS
}

/// The error-rate average after one more outcome.
pub fn next_error_rate(error_rate: f64, failed: bool) -> f64 {
    let x = if failed { 1.0 } else { 0.0 };
    error_rate * (1.0 - ERROR_ALPHA) + x * ERROR_ALPHA
}

/// Latency and error-rate estimates of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimates {
    latency: PeakEwma,
    error_rate: f64,
}

impl Estimates {
    /// Records one try that ended at `now_ms`: how long it took to its
    /// response head (`None` when there was no answer to time), and whether
    /// it failed.
    pub fn observe(&mut self, latency_ms: Option<f64>, failed: bool, now_ms: u64) {
        if let Some(l) = latency_ms {
            self.latency.observe(l, now_ms);
        }
        self.error_rate = next_error_rate(self.error_rate, failed);
    }

    /// (latency ms to charge, error rate) as of `now_ms` for an instance
    /// with `in_flight` requests outstanding: what a [`crate::Candidate`]
    /// carries as `latency_ms` and `error_rate` (see
    /// [`PeakEwma::cost_basis`]).
    pub fn cost(&self, now_ms: u64, in_flight: u32) -> (f64, f64) {
        (self.latency.cost_basis(now_ms, in_flight), self.error_rate)
    }

    /// The recent share of failed tries, 0..=1.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// The latency estimate itself.
    pub fn latency(&self) -> &PeakEwma {
        &self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn load_reports_expire() {
        assert!(fresh(1_000, 1_000));
        assert!(fresh(1_000, 1_000 + LOAD_REPORT_TTL_MS - 1));
        assert!(
            !fresh(1_000, 1_000 + LOAD_REPORT_TTL_MS),
            "a stale report is not used"
        );
        assert!(fresh(5_000, 1_000), "a report from the future is fresh");
    }

    #[test]
    fn one_failure_weighs_alpha_and_decays_geometrically() {
        let mut e = Estimates::default();
        e.observe(None, true, 0);
        assert_eq!(e.error_rate(), ERROR_ALPHA);
        e.observe(None, false, 0);
        assert_eq!(e.error_rate(), ERROR_ALPHA * (1.0 - ERROR_ALPHA));
    }

    #[test]
    fn observe_feeds_the_peak_ewma_and_cost_reads_its_cost_basis() {
        let mut e = Estimates::default();
        let mut p = PeakEwma::default();
        e.observe(Some(200.0), false, 10);
        p.observe(200.0, 10);
        assert_eq!(e.latency(), &p);
        for (now, in_flight) in [(10, 0), (60_000, 0), (60_000, 2)] {
            assert_eq!(e.cost(now, in_flight), (p.cost_basis(now, in_flight), 0.0));
        }
        e.observe(None, true, 20);
        assert_eq!(e.latency(), &p, "a try without an answer has no latency");
    }

    proptest! {
        #[test]
        fn the_error_rate_stays_a_share(outcomes in proptest::collection::vec(any::<bool>(), 0..200)) {
            let mut e = Estimates::default();
            for (t, failed) in outcomes.iter().enumerate() {
                e.observe(Some(10.0), *failed, t as u64);
                prop_assert!((0.0..=1.0).contains(&e.error_rate()));
            }
            if outcomes.iter().all(|f| !f) {
                prop_assert_eq!(e.error_rate(), 0.0);
            }
        }
    }
}
