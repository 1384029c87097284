//! Passive outlier ejection, nginx's `max_fails` / `fail_timeout` with
//! Envoy's growing ejection time, its `max_ejection_percent` cap and its
//! un-ejection by a passing active probe.
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
//! Ejection is a guess from a few failed requests, so it is bounded
//! ([`may_eject`]): it never takes more than `max_ejection_percent` of a
//! pool's members out, and never the last member that probes say is up. An
//! ejection the cap forbids is not made; the failure still counts, so the
//! next failure in the window asks again. And an active probe that passes
//! ends a running ejection ([`Ejector::end`]): the instance answers again.
//!
//! Time is a millisecond count passed in by the caller.

use crate::facts::InstanceFacts;

/// Longest ejection, as a multiple of `fail_timeout`.
pub const MAX_MULTIPLIER: u64 = 16;
/// Quiet windows after which the ejection multiplier starts over.
pub const RESET_AFTER_WINDOWS: u64 = 4;

/// `max_fails` within `fail_timeout_ms`; `max_fails == 0` disables ejection.
/// At most `max_ejection_percent` % of a pool's members may be out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveConfig {
    pub max_fails: u32,
    pub fail_timeout_ms: u64,
    pub max_ejection_percent: u32,
}

/// What one recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; below `max_fails` (or ejection is off, or the instance is
    /// already ejected).
    Counted,
    /// Counted, and the instance is ejected until this instant (ms).
    Ejected { until: u64 },
    /// Counted and reached `max_fails`, but the cap forbade the ejection.
    Capped,
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

    /// Whether an ejection is running at `now`.
    pub fn is_ejected(&self, now: u64) -> bool {
        now < self.ejected_until
    }

    /// Records one failure at `now`. When it reaches `max_fails`, `eject`
    /// is asked, with the instant the ejection would end, whether the
    /// ejection may be made (the caller's [`may_eject`], under whatever
    /// lock makes its check and its own bookkeeping one step). If not, the
    /// failures stay counted and the next failure within the window asks
    /// again.
    pub fn record_failure(
        &mut self,
        now: u64,
        cfg: PassiveConfig,
        eject: impl FnOnce(u64) -> bool,
    ) -> Verdict {
        if cfg.max_fails == 0 || now < self.ejected_until {
            return Verdict::Counted;
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
        self.fails = self.fails.saturating_add(1);
        if self.fails < cfg.max_fails {
            return Verdict::Counted;
        }
        let mult = (1u64 << self.ejections.min(62)).min(MAX_MULTIPLIER);
        let until = now.saturating_add(window.saturating_mul(mult));
        if !eject(until) {
            return Verdict::Capped;
        }
        self.fails = 0;
        self.ejections += 1;
        self.ejected_until = until;
        Verdict::Ejected { until }
    }

    /// Ends a running ejection at `now` (a passing active probe, or probes
    /// marking the instance up again) and returns how long it still had to
    /// run, ms; `None` when none was running. The multiplier is kept, so an
    /// instance ejected again soon is ejected for longer, and the quiet
    /// windows that reset it count from `now`.
    pub fn end(&mut self, now: u64) -> Option<u64> {
        self.fails = 0;
        if now >= self.ejected_until {
            return None;
        }
        let left = self.ejected_until - now;
        self.ejected_until = now;
        Some(left)
    }
}

/// Whether passive ejection may take member `slot` of a pool out at
/// `now_ms` (Envoy's `max_ejection_percent`, without its "always at least
/// one host"): after the ejection, at most `max_ejection_percent` % of the
/// members may be out — ejected or cooling down (`ejected_until_ms` after
/// `now_ms`) — and at least one other member must still be in service
/// (probes say it is up, not drained, not out). An instance that probes
/// have found down is out of service anyway, so it never counts as that
/// last one.
pub fn may_eject<F: InstanceFacts>(
    members: &[F],
    slot: usize,
    now_ms: u64,
    max_ejection_percent: u32,
) -> bool {
    let others = members.iter().enumerate().filter(|(i, _)| *i != slot);
    let out = |m: &F| now_ms < m.ejected_until_ms();
    let already_out = others.clone().filter(|(_, m)| out(m)).count() as u64;
    let within_cap =
        (already_out + 1) * 100 <= members.len() as u64 * u64::from(max_ejection_percent.min(100));
    within_cap
        && others
            .clone()
            .any(|(_, m)| m.healthy() && !m.drained() && !out(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Facts;
    use proptest::prelude::*;

    const CFG: PassiveConfig = PassiveConfig {
        max_fails: 2,
        fail_timeout_ms: 30_000,
        max_ejection_percent: 50,
    };

    /// A failure with the cap allowing the ejection: `Some(until)` when it ejects.
    fn fail(e: &mut Ejector, now: u64, cfg: PassiveConfig) -> Option<u64> {
        match e.record_failure(now, cfg, |_| true) {
            Verdict::Ejected { until } => Some(until),
            Verdict::Counted => None,
            Verdict::Capped => unreachable!("the cap always allows here"),
        }
    }

    #[test]
    fn two_fails_in_the_window_eject_for_fail_timeout() {
        let mut e = Ejector::default();
        assert_eq!(fail(&mut e, 1_000, CFG), None);
        assert_eq!(fail(&mut e, 2_000, CFG), Some(32_000));
    }

    #[test]
    fn fails_in_different_windows_do_not_eject() {
        let mut e = Ejector::default();
        assert_eq!(fail(&mut e, 0, CFG), None);
        assert_eq!(fail(&mut e, 30_000, CFG), None);
        assert_eq!(fail(&mut e, 60_001, CFG), None);
    }

    #[test]
    fn repeat_ejections_grow_then_cap_then_reset_after_quiet() {
        let mut e = Ejector::default();
        let mut now = 0;
        let mut lengths = vec![];
        for _ in 0..7 {
            fail(&mut e, now, CFG);
            let until = fail(&mut e, now, CFG).expect("ejected");
            lengths.push((until - now) / 30_000);
            now = until;
        }
        assert_eq!(lengths, vec![1, 2, 4, 8, 16, 16, 16]);
        now += 30_000 * RESET_AFTER_WINDOWS + 1;
        fail(&mut e, now, CFG);
        assert_eq!(fail(&mut e, now, CFG), Some(now + 30_000));
    }

    #[test]
    fn zero_max_fails_never_ejects() {
        let mut e = Ejector::default();
        let cfg = PassiveConfig {
            max_fails: 0,
            ..CFG
        };
        for t in 0..100 {
            assert_eq!(fail(&mut e, t, cfg), None);
        }
    }

    #[test]
    fn an_ejection_the_cap_forbids_is_not_made_but_the_failures_stay_counted() {
        let mut e = Ejector::default();
        let asked = std::cell::RefCell::new(vec![]);
        let verdict = |e: &mut Ejector, now, allow| {
            e.record_failure(now, CFG, |until| {
                asked.borrow_mut().push(until);
                allow
            })
        };
        assert_eq!(verdict(&mut e, 1_000, false), Verdict::Counted);
        assert_eq!(verdict(&mut e, 2_000, false), Verdict::Capped);
        assert!(!e.is_ejected(2_000));
        // Still within the window: the next failure asks again at once.
        assert_eq!(verdict(&mut e, 3_000, false), Verdict::Capped);
        assert_eq!(
            verdict(&mut e, 4_000, true),
            Verdict::Ejected { until: 34_000 }
        );
        assert_eq!(*asked.borrow(), vec![32_000, 33_000, 34_000]);
        assert_eq!(
            e.ejections(),
            1,
            "capped attempts do not grow the multiplier"
        );
        // A new window after the cap: counting starts over.
        let mut e = Ejector::default();
        assert_eq!(verdict(&mut e, 0, false), Verdict::Counted);
        assert_eq!(verdict(&mut e, 1, false), Verdict::Capped);
        assert_eq!(verdict(&mut e, 40_000, true), Verdict::Counted);
    }

    #[test]
    fn ending_an_ejection_lets_the_instance_back_now_and_keeps_the_multiplier() {
        let mut e = Ejector::default();
        fail(&mut e, 0, CFG);
        assert_eq!(fail(&mut e, 0, CFG), Some(30_000));
        assert_eq!(e.end(1_000), Some(29_000));
        assert!(!e.is_ejected(1_000));
        assert_eq!(e.ejected_until(), 1_000, "ended now");
        assert_eq!(e.end(2_000), None, "nothing left to end");
        fail(&mut e, 2_000, CFG);
        assert_eq!(
            fail(&mut e, 2_000, CFG),
            Some(62_000),
            "the second ejection of the streak is twice as long"
        );
    }

    fn member(ejected_until_ms: u64, healthy: bool, drained: bool) -> Facts {
        Facts {
            ejected_until_ms,
            healthy,
            drained,
            ..Facts::default()
        }
    }

    /// How many members of an `n`-member pool passive ejection takes out,
    /// ejecting one after the other as long as [`may_eject`] allows.
    fn ejectable(n: usize, pct: u32) -> usize {
        let mut members = vec![member(0, true, false); n];
        for i in 0..n {
            if may_eject(&members, i, 10, pct) {
                members[i].ejected_until_ms = 1_000;
            }
        }
        members.iter().filter(|m| m.ejected_until_ms > 10).count()
    }

    #[test]
    fn at_most_max_ejection_percent_of_a_pool_is_ejected_and_never_the_last_member() {
        let at_50: Vec<usize> = (1..=8).map(|n| ejectable(n, 50)).collect();
        assert_eq!(at_50, [0, 1, 1, 2, 2, 3, 3, 4]);
        let at_100: Vec<usize> = (1..=4).map(|n| ejectable(n, 100)).collect();
        assert_eq!(at_100, [0, 1, 2, 3], "one member always stays");
        assert_eq!(ejectable(3, 10), 0, "10 % of 3 is less than one member");
        assert_eq!(ejectable(10, 10), 1);
        assert_eq!(ejectable(5, 0), 0);
    }

    #[test]
    fn the_last_member_in_service_is_not_ejected_and_cool_downs_count_as_out() {
        let ok = member(0, true, false);
        let down = member(0, false, false);
        let drained = member(0, true, true);
        let cooling = member(500, true, false);
        let at = |members: &[Facts], pct| may_eject(members, 0, 10, pct);
        assert!(at(&[ok, ok], 50));
        assert!(!at(&[ok, down], 100), "the other is down by probes");
        assert!(!at(&[ok, drained], 100), "the other is drained");
        assert!(!at(&[ok, cooling], 100), "the other is cooling down");
        assert!(!at(&[ok, ok, cooling], 50), "one of three is out already");
        assert!(at(&[ok, ok, cooling, ok], 50));
        assert!(
            at(&[ok, down, ok], 100),
            "down ones are not ejected, so not counted"
        );
        assert!(!at(&[ok, down, down, down], 100));
        assert!(
            at(&[ok, member(10, true, false)], 50),
            "an ejection ending now is over"
        );
    }

    proptest! {
        #[test]
        fn ejection_length_is_between_one_and_max_multiplier_windows(
            times in proptest::collection::vec(0u64..1_000, 1..100),
            max_fails in 1u32..5, timeout in 1u64..5_000,
        ) {
            let cfg = PassiveConfig { max_fails, fail_timeout_ms: timeout, ..CFG };
            let mut e = Ejector::default();
            let mut now = 0;
            for dt in times {
                now += dt;
                if let Some(until) = fail(&mut e, now, cfg) {
                    prop_assert!(until >= now + timeout && until <= now + timeout * MAX_MULTIPLIER);
                }
            }
        }

        /// Failures on random members of a pool, with random probe states
        /// and time passing: whenever `may_eject` is obeyed, the members out
        /// never exceed the cap (rounded down), and an ejection always
        /// leaves a member in service.
        #[test]
        fn obeying_may_eject_keeps_the_cap_and_one_member_in_service(
            n in 1usize..9,
            pct in 0u32..=100,
            events in proptest::collection::vec((0usize..9, 0u64..3_000, any::<bool>()), 1..200),
        ) {
            let cfg = PassiveConfig { max_fails: 1, fail_timeout_ms: 5_000, max_ejection_percent: pct };
            let mut members = vec![member(0, true, false); n];
            let mut ejectors = vec![Ejector::default(); n];
            let mut now = 0;
            for (i, dt, flip) in events {
                let i = i % n;
                now += dt;
                if flip {
                    members[i].healthy = !members[i].healthy;
                    continue;
                }
                let snapshot = members.clone();
                let v = ejectors[i].record_failure(now, cfg, |_| may_eject(&snapshot, i, now, pct));
                let out = |ms: &[Facts]| ms.iter().filter(|m| now < m.ejected_until_ms).count();
                if let Verdict::Ejected { until } = v {
                    members[i].ejected_until_ms = until;
                    // (Probes may find that one down later: then the view
                    // tries the ejected ones anyway.)
                    let in_service = members.iter().any(|m| m.healthy && now >= m.ejected_until_ms);
                    prop_assert!(in_service, "the last one up was ejected: {members:?}");
                    prop_assert_eq!(out(&members), out(&snapshot) + 1);
                }
                let out = out(&members);
                prop_assert!(out * 100 <= n * pct as usize, "{out} of {n} out at {pct} %");
            }
        }
    }
}
