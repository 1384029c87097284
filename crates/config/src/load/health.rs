//! Health: a pool's active `health_check:` and `passive:` settings, each
//! merged over the global section of the same name.

use super::errors::Errors;
use super::timeouts::millis;
use crate::defaults::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_FAIL_TIMEOUT, DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_PATH,
    DEFAULT_HEALTH_TIMEOUT, DEFAULT_JITTER, DEFAULT_MAX_EJECTION_PERCENT, DEFAULT_MAX_FAILS,
    DEFAULT_RECOVERY_THRESHOLD, FAST_INTERVAL_DIVISOR, MAX_EJECTION_PERCENT,
};
use crate::file::{FileHealth, FilePassive};
use crate::model::{HealthCheck, Probe};
use crate::units::Dur;
use fulcrum_policy::passive::PassiveConfig;

/// A pool's `health_check:` (`p`) over the global one (`g`); `path` is
/// the pool's `health_check`.
pub(super) fn merge_health(
    g: &FileHealth,
    p: Option<&FileHealth>,
    path: &str,
    errs: &mut Errors,
) -> HealthCheck {
    let get = |f: fn(&FileHealth) -> Option<Dur>| p.and_then(f).or(f(g)).map(|d| d.0);
    let probe_path = p
        .and_then(|x| x.path.clone())
        .or(g.path.clone())
        .unwrap_or_else(|| DEFAULT_HEALTH_PATH.into());
    let probe = if probe_path == "tcp" {
        Probe::Tcp
    } else {
        if !probe_path.starts_with('/') {
            errs.push(
                &format!("{path}.path"),
                "must start with `/`, or be `tcp` for a connect-only probe".into(),
            );
        }
        Probe::Http { path: probe_path }
    };
    let interval = get(|x| x.interval).unwrap_or(DEFAULT_HEALTH_INTERVAL);
    let fast_interval = get(|x| x.fast_interval).unwrap_or(interval / FAST_INTERVAL_DIVISOR);
    if fast_interval.is_zero() {
        errs.push(
            &format!("{path}.fast_interval"),
            "must be greater than 0".into(),
        );
    }
    let timeout = get(|x| x.timeout).unwrap_or(DEFAULT_HEALTH_TIMEOUT);
    if interval.is_zero() {
        errs.push(&format!("{path}.interval"), "must be greater than 0".into());
    }
    if timeout.is_zero() {
        errs.push(&format!("{path}.timeout"), "must be greater than 0".into());
    }
    let jitter = p
        .and_then(|x| x.jitter)
        .or(g.jitter)
        .unwrap_or(DEFAULT_JITTER);
    if !(0.0..=1.0).contains(&jitter) {
        errs.push(
            &format!("{path}.jitter"),
            "must be a fraction between 0 and 1".into(),
        );
    }
    let thr = |f: fn(&FileHealth) -> Option<u32>, key: &str, d: u32, errs: &mut Errors| {
        let v = p.and_then(f).or(f(g)).unwrap_or(d);
        if v == 0 {
            errs.push(&format!("{path}.{key}"), "must be at least 1".into());
        }
        v.max(1)
    };
    HealthCheck {
        interval,
        fast_interval: fast_interval.min(interval),
        timeout,
        probe,
        failure_threshold: thr(
            |x| x.failure_threshold,
            "failure_threshold",
            DEFAULT_FAILURE_THRESHOLD,
            errs,
        ),
        recovery_threshold: thr(
            |x| x.recovery_threshold,
            "recovery_threshold",
            DEFAULT_RECOVERY_THRESHOLD,
            errs,
        ),
        jitter: jitter.clamp(0.0, 1.0),
    }
}

/// A pool's `passive:` (`p`) over the global one (`g`); `path` is the
/// pool's. A bad value is reported where it is written.
pub(super) fn merge_passive(
    g: &FilePassive,
    p: Option<&FilePassive>,
    path: &str,
    errs: &mut Errors,
) -> PassiveConfig {
    let own = p.and_then(|x| x.max_ejection_percent);
    let max_ejection_percent = own
        .or(g.max_ejection_percent)
        .unwrap_or(DEFAULT_MAX_EJECTION_PERCENT);
    if max_ejection_percent > MAX_EJECTION_PERCENT {
        let at = match own {
            Some(_) => format!("{path}.passive.max_ejection_percent"),
            None => "passive.max_ejection_percent".into(),
        };
        errs.push(
            &at,
            format!("must be a percentage, 0 to {MAX_EJECTION_PERCENT}"),
        );
    }
    PassiveConfig {
        max_fails: p
            .and_then(|x| x.max_fails)
            .or(g.max_fails)
            .unwrap_or(DEFAULT_MAX_FAILS),
        fail_timeout_ms: millis(
            p.and_then(|x| x.fail_timeout).or(g.fail_timeout),
            DEFAULT_FAIL_TIMEOUT,
        ),
        max_ejection_percent: max_ejection_percent.min(MAX_EJECTION_PERCENT),
    }
}
