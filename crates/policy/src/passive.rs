//! Passive outlier ejection, nginx's `max_fails` / `fail_timeout` with
//! Envoy's growing ejection time.
//!
//! Real traffic is the probe: connect errors, timeouts, resets and the
//! statuses a pool treats as failures are recorded here. `max_fails`
//! failures within one `fail_timeout` window eject the instance for
//! `fail_timeout × 2^(k-1)` where `k` counts recent ejections (capped at
//! `MAX_MULTIPLIER`), so an instance that keeps failing is retried less and
//! less often. The multiplier resets after the instance has stayed out of
//! trouble for `RESET_AFTER_WINDOWS` windows. Successes cost nothing: the
//! proxy records only failures, keeping the success path lock-free.
//!
//! Time is a millisecond count passed in by the caller.

/// Longest ejection, as a multiple of `fail_timeout`.
pub const MAX_MULTIPLIER: u64 = 16;
/// Quiet windows after which the ejection multiplier starts over.
pub const RESET_AFTER_WINDOWS: u64 = 4;

/// `max_fails` within `fail_timeout_ms`; `max_fails == 0` disables ejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveConfig {
    pub max_fails: u32,
    pub fail_timeout_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ejector {
    window_start: u64,
    fails: u32,
    ejections: u32,
    ejected_until: u64,
}

impl Ejector {
    /// The instant (ms) until which the instance is ejected; in the past when it is not.
    pub fn ejected_until(&self) -> u64 {
        self.ejected_until
    }

    /// How many ejections in the current streak.
    pub fn ejections(&self) -> u32 {
        self.ejections
    }

    /// Records one failure at `now`. Returns `Some(until)` when this failure
    /// ejects the instance.
    pub fn record_failure(&mut self, now: u64, cfg: PassiveConfig) -> Option<u64> {
        if cfg.max_fails == 0 || now < self.ejected_until {
            return None;
        }
        let window = cfg.fail_timeout_ms.max(1);
        if self.ejections > 0
            && now.saturating_sub(self.ejected_until) > window.saturating_mul(RESET_AFTER_WINDOWS)
        {
            self.ejections = 0;
        }
        if self.fails == 0 || now.saturating_sub(self.window_start) >= window {
            self.window_start = now;
            self.fails = 0;
        }
        self.fails += 1;
        if self.fails < cfg.max_fails {
            return None;
        }
        self.fails = 0;
        self.ejections += 1;
        let mult = (1u64 << (self.ejections - 1).min(62)).min(MAX_MULTIPLIER);
        self.ejected_until = now.saturating_add(window.saturating_mul(mult));
        Some(self.ejected_until)
    }

    /// Lifts an ejection early (an admin action, or a passed active probe
    /// after recovery); keeps the multiplier.
    pub fn lift(&mut self) {
        self.ejected_until = 0;
        self.fails = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CFG: PassiveConfig = PassiveConfig {
        max_fails: 2,
        fail_timeout_ms: 30_000,
    };

    #[test]
    fn two_fails_in_the_window_eject_for_fail_timeout() {
        let mut e = Ejector::default();
        assert_eq!(e.record_failure(1_000, CFG), None);
        assert_eq!(e.record_failure(2_000, CFG), Some(32_000));
    }

    #[test]
    fn fails_in_different_windows_do_not_eject() {
        let mut e = Ejector::default();
        assert_eq!(e.record_failure(0, CFG), None);
        assert_eq!(e.record_failure(30_000, CFG), None);
        assert_eq!(e.record_failure(60_001, CFG), None);
    }

    #[test]
    fn repeat_ejections_grow_then_cap_then_reset_after_quiet() {
        let mut e = Ejector::default();
        let mut now = 0;
        let mut lengths = vec![];
        for _ in 0..7 {
            e.record_failure(now, CFG);
            let until = e.record_failure(now, CFG).expect("ejected");
            lengths.push((until - now) / 30_000);
            now = until;
        }
        assert_eq!(lengths, vec![1, 2, 4, 8, 16, 16, 16]);
        now += 30_000 * RESET_AFTER_WINDOWS + 1;
        e.record_failure(now, CFG);
        assert_eq!(e.record_failure(now, CFG), Some(now + 30_000));
    }

    #[test]
    fn zero_max_fails_never_ejects() {
        let mut e = Ejector::default();
        let cfg = PassiveConfig {
            max_fails: 0,
            ..CFG
        };
        for t in 0..100 {
            assert_eq!(e.record_failure(t, cfg), None);
        }
    }

    proptest! {
        #[test]
        fn ejection_length_is_between_one_and_max_multiplier_windows(
            times in proptest::collection::vec(0u64..1_000, 1..100),
            max_fails in 1u32..5, timeout in 1u64..5_000,
        ) {
            let cfg = PassiveConfig { max_fails, fail_timeout_ms: timeout };
            let mut e = Ejector::default();
            let mut now = 0;
            for dt in times {
                now += dt;
                if let Some(until) = e.record_failure(now, cfg) {
                    prop_assert!(until >= now + timeout && until <= now + timeout * MAX_MULTIPLIER);
                }
            }
        }
    }
}
