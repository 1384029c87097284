//! Active health hysteresis: an instance flips to *down* after
//! `failure_threshold` consecutive failed probes and back to *up* after
//! `recovery_threshold` consecutive successes (HAProxy's `fall` / `rise`).
//! One bad probe never flaps an instance; one good probe never trusts it.

/// Probe history of one instance. Starts up, as nginx and HAProxy do, so a
/// freshly configured pool serves at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    up: bool,
    streak: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            up: true,
            streak: 0,
        }
    }
}

impl Hysteresis {
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Up, with no failed probe since: the state in which probes run at the
    /// normal interval. A down instance, or one whose last probes disagree
    /// with its state, is probed at the fast interval (HAProxy's
    /// `fastinter`), so it recovers or goes down sooner.
    pub fn settled(&self) -> bool {
        self.up && self.streak == 0
    }

    /// Records one probe result. Returns `Some(new_state)` when the instance
    /// flips, `None` otherwise. Thresholds below 1 are treated as 1.
    pub fn observe(
        &mut self,
        ok: bool,
        failure_threshold: u32,
        recovery_threshold: u32,
    ) -> Option<bool> {
        if ok == self.up {
            // A result agreeing with the current state breaks any opposite streak.
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up {
            failure_threshold
        } else {
            recovery_threshold
        }
        .max(1);
        if self.streak >= needed {
            self.up = ok;
            self.streak = 0;
            Some(ok)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_an_up_instance_without_failures_is_settled() {
        let mut h = Hysteresis::default();
        assert!(h.settled());
        h.observe(false, 2, 2);
        assert!(!h.settled(), "between states");
        h.observe(false, 2, 2);
        assert!(!h.settled(), "down");
        h.observe(true, 2, 2);
        assert!(!h.settled(), "recovering");
        h.observe(true, 2, 2);
        assert!(h.settled(), "up again");
        h.observe(false, 2, 2);
        h.observe(true, 2, 2);
        assert!(h.settled(), "a success ends the streak");
    }

    #[test]
    fn three_failures_mark_down_two_successes_mark_up() {
        let mut h = Hysteresis::default();
        assert_eq!(h.observe(false, 3, 2), None);
        assert_eq!(h.observe(false, 3, 2), None);
        assert_eq!(h.observe(false, 3, 2), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.observe(true, 3, 2), None);
        assert_eq!(h.observe(true, 3, 2), Some(true));
        assert!(h.is_up());
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let mut h = Hysteresis::default();
        for _ in 0..10 {
            assert_eq!(h.observe(false, 3, 2), None);
            assert_eq!(h.observe(false, 3, 2), None);
            assert_eq!(h.observe(true, 3, 2), None);
        }
        assert!(h.is_up());
    }

    proptest! {
        /// Replays a probe sequence against a direct model: the state is up
        /// iff the last flip was to up, and a flip to X happens exactly when
        /// the trailing run of X results reaches X's threshold.
        #[test]
        fn flips_exactly_when_a_run_reaches_its_threshold(
            results in proptest::collection::vec(any::<bool>(), 0..200),
            fall in 1u32..6, rise in 1u32..6,
        ) {
            let mut h = Hysteresis::default();
            let mut up = true;
            let mut run = 0u32;
            for r in results {
                let flipped = h.observe(r, fall, rise);
                if r != up {
                    run += 1;
                    let need = if up { fall } else { rise };
                    if run == need { up = r; run = 0; prop_assert_eq!(flipped, Some(r)); }
                    else { prop_assert_eq!(flipped, None); }
                } else {
                    run = 0;
                    prop_assert_eq!(flipped, None);
                }
                prop_assert_eq!(h.is_up(), up);
            }
        }
    }
}
