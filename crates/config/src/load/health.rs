//! Health: a pool's active `health_check:` and `passive:` settings, each
//! merged over the global section of the same name. Each section's own
//! values are checked where they are written (`check_*`), once; merging
//! only combines them.

use super::errors::Errors;
use super::timeouts::{check_positive, millis};
use crate::defaults::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_FAIL_TIMEOUT, DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_PATH,
    DEFAULT_HEALTH_TIMEOUT, DEFAULT_JITTER, DEFAULT_MAX_EJECTION_PERCENT, DEFAULT_MAX_FAILS,
    DEFAULT_RECOVERY_THRESHOLD, FAST_INTERVAL_DIVISOR, MAX_EJECTION_PERCENT,
};
use crate::file::{FileHealth, FilePassive};
use crate::model::{HealthCheck, Probe};
use crate::units::Dur;
use fulcrum_policy::passive::PassiveConfig;

/// Checks the values written in one `health_check:` section, the global
/// one or a pool's (`path`): each is reported once, where it is written.
pub(super) fn check_health(h: &FileHealth, path: &str, errs: &mut Errors) {
    if let Some(p) = &h.path {
        if p != "tcp" && !p.starts_with('/') {
            let hint = match crate::words::closest(p, &["tcp"]) {
                Some(_) => "; did you mean `tcp`?",
                None => "",
            };
            errs.push(
                &format!("{path}.path"),
                format!("must start with `/`, or be `tcp` for a connect-only probe{hint}"),
            );
        }
    }
    let written = [
        ("interval", h.interval),
        ("fast_interval", h.fast_interval),
        ("timeout", h.timeout),
    ];
    check_positive(&written, path, errs);
    if h.jitter.is_some_and(|j| !(0.0..=1.0).contains(&j)) {
        errs.push(
            &format!("{path}.jitter"),
            "must be a fraction between 0 and 1".into(),
        );
    }
    for (key, v) in [
        ("failure_threshold", h.failure_threshold),
        ("recovery_threshold", h.recovery_threshold),
    ] {
        if v == Some(0) {
            errs.push(&format!("{path}.{key}"), "must be at least 1".into());
        }
    }
}

/// A pool's `health_check:` (`p`) over the global one (`g`), both
/// checked already by [`check_health`]; bad values are kept in bounds.
pub(super) fn merge_health(g: &FileHealth, p: Option<&FileHealth>) -> HealthCheck {
    let get = |f: fn(&FileHealth) -> Option<Dur>| p.and_then(f).or(f(g)).map(|d| d.0);
    let probe_path = p
        .and_then(|x| x.path.clone())
        .or(g.path.clone())
        .unwrap_or_else(|| DEFAULT_HEALTH_PATH.into());
    let probe = if probe_path == "tcp" {
        Probe::Tcp
    } else {
        Probe::Http { path: probe_path }
    };
    let interval = get(|x| x.interval).unwrap_or(DEFAULT_HEALTH_INTERVAL);
    // Derived from an interval of a few nanoseconds, it would be zero.
    let derived = Some(interval / FAST_INTERVAL_DIVISOR).filter(|d| !d.is_zero());
    let fast_interval = get(|x| x.fast_interval).or(derived).unwrap_or(interval);
    let jitter = p
        .and_then(|x| x.jitter)
        .or(g.jitter)
        .unwrap_or(DEFAULT_JITTER);
    let thr =
        |f: fn(&FileHealth) -> Option<u32>, d: u32| p.and_then(f).or(f(g)).unwrap_or(d).max(1);
    HealthCheck {
        interval,
        fast_interval: fast_interval.min(interval),
        timeout: get(|x| x.timeout).unwrap_or(DEFAULT_HEALTH_TIMEOUT),
        probe,
        failure_threshold: thr(|x| x.failure_threshold, DEFAULT_FAILURE_THRESHOLD),
        recovery_threshold: thr(|x| x.recovery_threshold, DEFAULT_RECOVERY_THRESHOLD),
        jitter: if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            DEFAULT_JITTER
        },
    }
}

/// Checks one `passive:` section, the global one or a pool's (`path`).
pub(super) fn check_passive(p: &FilePassive, path: &str, errs: &mut Errors) {
    if p.max_ejection_percent
        .is_some_and(|m| m > MAX_EJECTION_PERCENT)
    {
        errs.push(
            &format!("{path}.max_ejection_percent"),
            format!("must be a percentage, 0 to {MAX_EJECTION_PERCENT}"),
        );
    }
}

/// A pool's `passive:` (`p`) over the global one (`g`), both checked
/// already by [`check_passive`].
pub(super) fn merge_passive(g: &FilePassive, p: Option<&FilePassive>) -> PassiveConfig {
    PassiveConfig {
        max_fails: p
            .and_then(|x| x.max_fails)
            .or(g.max_fails)
            .unwrap_or(DEFAULT_MAX_FAILS),
        fail_timeout_ms: millis(
            p.and_then(|x| x.fail_timeout).or(g.fail_timeout),
            DEFAULT_FAIL_TIMEOUT,
        ),
        max_ejection_percent: p
            .and_then(|x| x.max_ejection_percent)
            .or(g.max_ejection_percent)
            .unwrap_or(DEFAULT_MAX_EJECTION_PERCENT)
            .min(MAX_EJECTION_PERCENT),
    }
}
