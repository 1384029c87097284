//! `dynamic_weights:`, global and per pool: a pool's section merged over
//! the global one, field by field; either one written turns dynamic
//! weights on for the pool, unless it says `enabled: false`. Each
//! section's values are checked where they are written, once.

use super::errors::Errors;
use super::timeouts::millis;
use crate::defaults::{
    MAX_DYNAMIC_INTERVAL, MAX_DYNAMIC_STEP, MIN_DYNAMIC_INTERVAL, MIN_DYNAMIC_MAX,
};
use crate::file::FileDynamicWeights;
use crate::load::MAX_WEIGHT;
use fulcrum_policy::dynamic_weight::DynamicWeights;
use std::time::Duration;

/// Checks the values written in one `dynamic_weights:` section, the
/// global one or a pool's (`path`).
pub(super) fn check_dynamic(d: &FileDynamicWeights, path: &str, errs: &mut Errors) {
    if let Some(i) = d.interval.map(|d| d.0) {
        if !(MIN_DYNAMIC_INTERVAL..=MAX_DYNAMIC_INTERVAL).contains(&i) {
            errs.push(
                &format!("{path}.interval"),
                format!(
                    "{i:?}: must be from {}ms to {}s",
                    MIN_DYNAMIC_INTERVAL.as_millis(),
                    MAX_DYNAMIC_INTERVAL.as_secs()
                ),
            );
        }
    }
    if d.max
        .is_some_and(|m| !(MIN_DYNAMIC_MAX..=MAX_WEIGHT).contains(&m))
    {
        errs.push(
            &format!("{path}.max"),
            format!("must be a whole number from {MIN_DYNAMIC_MAX} to {MAX_WEIGHT}"),
        );
    }
    if d.max_step
        .is_some_and(|s| !(s > 0.0 && s <= MAX_DYNAMIC_STEP))
    {
        errs.push(
            &format!("{path}.max_step"),
            format!("must be a fraction above 0 and at most {MAX_DYNAMIC_STEP} (0.3 = 30 % per interval)"),
        );
    }
}

/// A pool's `dynamic_weights:` (`p`) over the global one (`g`), both
/// checked already by [`check_dynamic`]: `None` (off) when neither is
/// written or the merged `enabled` is false.
pub(super) fn merge_dynamic(
    g: Option<&FileDynamicWeights>,
    p: Option<&FileDynamicWeights>,
) -> Option<DynamicWeights> {
    if g.is_none() && p.is_none() {
        return None;
    }
    let enabled = p.and_then(|x| x.enabled).or(g.and_then(|x| x.enabled));
    if enabled == Some(false) {
        return None;
    }
    let interval = p.and_then(|x| x.interval).or(g.and_then(|x| x.interval));
    let max = p.and_then(|x| x.max).or(g.and_then(|x| x.max));
    let max_step = p.and_then(|x| x.max_step).or(g.and_then(|x| x.max_step));
    let d = DynamicWeights::default();
    let (lo, hi) = (MIN_DYNAMIC_INTERVAL, MAX_DYNAMIC_INTERVAL);
    Some(DynamicWeights {
        interval_ms: millis(interval, Duration::from_millis(d.interval_ms))
            .clamp(lo.as_millis() as u64, hi.as_millis() as u64),
        max_weight: max
            .unwrap_or(d.max_weight)
            .clamp(MIN_DYNAMIC_MAX, MAX_WEIGHT),
        max_step: max_step
            .filter(|s| *s > 0.0 && *s <= MAX_DYNAMIC_STEP)
            .unwrap_or(d.max_step),
    })
}
