//! Slow start: an instance entering service, or coming back from an
//! ejection or a cool-down, gets a weight that ramps from a tenth of its
//! weight up to the full weight over `slow_start` (nginx Plus's and
//! Envoy's `slow_start`, HAProxy's `slowstart`), so a cold instance —
//! empty caches, a JIT or a model still warming — is not handed its full
//! share at once.
//!
//! Weights are multiplied by [`SLOW_START_SCALE`] while slow start is
//! configured, so even weight 1 can ramp (from 10 to 100 instead of being
//! stuck at 1). [`weight`] is what the view applies to every instance;
//! [`ramp`] is the ramp alone.

/// With `slow_start`, weights are multiplied by this so that even weight 1
/// can ramp (from a tenth of its share) instead of being stuck at 1.
pub const SLOW_START_SCALE: u32 = 100;

/// The weight the selector sees for an instance of weight `weight` at
/// `now_ms`, with a pool's `slow_start_ms` (0 = off: `weight` unchanged).
/// The ramp starts at the later of `up_since_ms` (when the instance entered
/// service; 0 = present since start-up) and `ejected_until_ms` (when its
/// last ejection or cool-down ends; 0 = never ejected); both 0 = no ramp.
pub fn weight(
    weight: u32,
    slow_start_ms: u64,
    up_since_ms: u64,
    ejected_until_ms: u64,
    now_ms: u64,
) -> u32 {
    if slow_start_ms == 0 {
        return weight;
    }
    ramp(
        weight.saturating_mul(SLOW_START_SCALE),
        slow_start_ms,
        up_since_ms.max(ejected_until_ms),
        now_ms,
    )
}

/// `weight` ramped by slow start: from a tenth of `weight` (at least 1) up
/// to `weight` over `slow_start_ms` after `since_ms` (0 = no ramp).
pub fn ramp(weight: u32, slow_start_ms: u64, since_ms: u64, now_ms: u64) -> u32 {
    if slow_start_ms == 0 {
        return weight;
    }
    let elapsed = now_ms.saturating_sub(since_ms);
    if since_ms == 0 || elapsed >= slow_start_ms {
        return weight;
    }
    let ramped = u128::from(weight) * u128::from(elapsed) / u128::from(slow_start_ms);
    (ramped as u32).max(weight / 10).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slow_start_ramps_from_one_to_the_full_weight() {
        assert_eq!(
            ramp(10, 30_000, 0, 5_000),
            10,
            "present since start-up: no ramp"
        );
        assert_eq!(ramp(10, 30_000, 10_000, 10_000), 1);
        assert_eq!(ramp(100, 30_000, 10_000, 10_000), 10, "starts at a tenth");
        assert_eq!(ramp(10, 30_000, 10_000, 25_000), 5);
        assert_eq!(ramp(10, 30_000, 10_000, 40_000), 10);
        assert_eq!(ramp(10, 0, 10_000, 10_000), 10, "off when slow_start is 0");
    }

    #[test]
    fn the_ramp_restarts_when_an_ejection_ends() {
        // Up since 1 s, ejected until 50 s: at 50 s it starts over.
        assert_eq!(weight(1, 10_000, 1_000, 50_000, 50_000), 10);
        assert_eq!(weight(1, 10_000, 1_000, 50_000, 55_000), 50);
        assert_eq!(weight(1, 10_000, 1_000, 50_000, 60_000), 100);
        assert_eq!(weight(1, 10_000, 1_000, 0, 60_000), 100);
    }

    #[test]
    fn scaled_only_while_slow_start_is_configured() {
        assert_eq!(weight(3, 0, 10_000, 0, 10_000), 3);
        assert_eq!(weight(3, 1, 0, 0, 10_000), 300);
        assert_eq!(weight(u32::MAX, 1, 0, 0, 0), u32::MAX, "saturates");
    }

    proptest! {
        #[test]
        fn the_ramp_rises_from_a_tenth_to_the_weight(
            w in 1u32..100_000, slow in 1u64..100_000, since in 1u64..100_000,
            t1 in 0u64..300_000, dt in 0u64..100_000,
        ) {
            let a = ramp(w, slow, since, t1);
            let b = ramp(w, slow, since, t1 + dt);
            prop_assert!(a <= b, "not monotone: {} then {}", a, b);
            prop_assert!(a >= (w / 10).max(1) && b <= w);
            if t1 >= since + slow {
                prop_assert_eq!(a, w);
            }
        }
    }
}
