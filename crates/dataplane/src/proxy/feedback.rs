//! What a try teaches about its instance, recorded in one place: time to
//! the response head (histogram and, for the latency-aware algorithms, the
//! estimates), errors (counted for every algorithm, since start and in the
//! recent window: [`counted`]), ORCA load reports, `Retry-After` cool-downs and
//! passive ejection (within the pool's `max_ejection_percent`,
//! `fulcrum_policy::passive::may_eject`) — and the completion handle that rides in the response
//! body (tower's `TrackCompletion`), which frees the instance's slot,
//! returns the connection to its pool at a clean end and finishes the
//! request's record.

use super::admission::Env;
use crate::http::body::{BodyEnd, Completion};
use crate::observe::{Outcome, Pending};
use crate::runtime::events::EventKind;
use crate::runtime::load_report;
use crate::runtime::{InFlightGuard, InstanceState, PoolRuntime};
use crate::upstream::Pooled;
use fulcrum_policy::passive::{may_eject, Verdict};
use fulcrum_policy::retry::Failure;
use http::{header, HeaderMap, StatusCode};
use std::time::Duration;

/// The instance answered with a response head after `took`; what it
/// changed that the event log should show (a cool-down starting).
pub fn answered(
    pool: &PoolRuntime,
    inst: &InstanceState,
    status: StatusCode,
    headers: &HeaderMap,
    took: Duration,
    now_ms: u64,
) -> Option<Notable> {
    inst.latency.record_us(took.as_micros() as u64);
    let inputs = pool.cfg.algorithm.inputs();
    if inputs.latency || inputs.resources {
        inst.observe(
            Some(took.as_secs_f64() * 1000.0),
            status.as_u16() >= 500,
            now_ms,
        );
    }
    if inputs.resources {
        let report = headers
            .get(load_report::HEADER)
            .and_then(|v| v.to_str().ok());
        if let Some(r) = report.and_then(load_report::parse) {
            inst.report_load(r, now_ms);
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        if let Some(secs) = retry_after_secs(headers) {
            // The instance asked for a pause: give it one.
            if inst.cool_down(now_ms, now_ms.saturating_add(secs * 1000)) {
                tracing::info!(pool = %pool.cfg.name, instance = %inst.endpoint.url, status = status.as_u16(), secs, "instance cooling down (Retry-After)");
                return Some(Notable::CoolDown {
                    status: status.as_u16(),
                    secs,
                });
            }
        }
    }
    None
}

/// A change in an instance's state that feedback caused, for the
/// gateway's event log ([`note`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notable {
    /// A `Retry-After` answer started a cool-down.
    CoolDown { status: u16, secs: u64 },
    /// Repeated failures ejected it.
    Ejected { for_ms: u64, failure: Failure },
}

/// Records `n` in the gateway's event log (rare: the start of a
/// cool-down or an ejection).
pub fn note(env: Env<'_>, pool: &PoolRuntime, inst: &InstanceState, n: Notable) {
    let (kind, message) = match n {
        Notable::CoolDown { status, secs } => (
            EventKind::CoolDown,
            format!("answered {status} with Retry-After: {secs} s; no requests until then"),
        ),
        Notable::Ejected { for_ms, failure } => (
            EventKind::Ejected,
            format!(
                "ejected for {:.1} s after repeated failures (last: {failure})",
                for_ms as f64 / 1000.0
            ),
        ),
    };
    env.events.push(
        env.clock.unix_ms(),
        kind,
        Some(&inst.endpoint.url),
        Some(&pool.cfg.name),
        &message,
    );
}

/// Counts one try whose outcome is known in the instance's error counts
/// and recent window (`runtime::window`), whatever the pool's algorithm:
/// `head` is its status and time to response head when one came, `failed`
/// whether it failed in the instance's fault (no head; a status listed in
/// `retry.on`; a `101` nobody asked for). It is an error when it failed or
/// its status is a 5xx. Called once per try, after [`answered`] and
/// before [`failed`].
pub fn counted(
    inst: &InstanceState,
    head: Option<(StatusCode, Duration)>,
    failed: bool,
    now_ms: u64,
) {
    let error = failed || head.is_some_and(|(s, _)| s.is_server_error());
    let head_us = head.map(|(_, took)| took.as_micros() as u64);
    inst.window.record(now_ms, head_us, error);
}

/// A try failed in the instance's fault: no answer at all (`waited` is
/// the time spent when it was a timeout), or an answer whose status is
/// listed in `retry.on` (`answered`, already measured by [`answered`]).
pub fn failed(
    pool: &PoolRuntime,
    inst: &InstanceState,
    failure: Failure,
    answered: bool,
    waited: Duration,
    now_ms: u64,
) -> Option<Notable> {
    if pool.measures() && !answered {
        let waited = (failure == Failure::Timeout).then_some(waited.as_secs_f64() * 1000.0);
        inst.observe(waited, true, now_ms);
    }
    let cfg = pool.cfg.passive;
    // The pool's cap, read only when this failure would eject.
    let within_cap = || {
        let members = &pool.members;
        let slot = members.iter().position(|m| std::ptr::eq(&*m.inst, inst));
        slot.is_some_and(|s| may_eject(members, s, now_ms, cfg.max_ejection_percent))
    };
    match inst.record_failure(now_ms, cfg, within_cap) {
        Verdict::Ejected { until } => {
            tracing::warn!(pool = %pool.cfg.name, instance = %inst.endpoint.url, failure = %failure,
                ejected_for_ms = until - now_ms, "instance ejected after repeated failures");
            return Some(Notable::Ejected {
                for_ms: until - now_ms,
                failure,
            });
        }
        Verdict::Capped => {
            // Counted; the next failure in the window asks again. Not a
            // warning: under churn this can be every failure.
            tracing::debug!(pool = %pool.cfg.name, instance = %inst.endpoint.url, failure = %failure,
                max_ejection_percent = cfg.max_ejection_percent,
                "instance not ejected: the pool keeps at least one instance and at most max_ejection_percent out");
        }
        Verdict::Counted => {}
    }
    None
}

/// Seconds in a `Retry-After` header (the delta-seconds form), capped at 5 minutes.
fn retry_after_secs(h: &HeaderMap) -> Option<u64> {
    h.get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.min(300))
}

/// Rides in a proxied response body until it ends or is dropped.
#[derive(Debug)]
pub struct Done {
    /// The instance's in-flight slot (`None` for a last answer passed on
    /// after the slot was given up).
    pub guard: Option<InFlightGuard>,
    /// The connection, back to its pool at a clean end.
    pub conn: Option<Pooled>,
    pub record: Pending,
}

impl Completion for Done {
    fn complete(mut self, end: BodyEnd, bytes: u64) {
        if end == BodyEnd::Complete {
            if let Some(c) = self.conn {
                c.give_back();
            }
        }
        drop(self.guard);
        self.record.record().bytes_out = bytes;
        self.record.finish(match end {
            BodyEnd::Complete => Outcome::Complete,
            BodyEnd::Failed => Outcome::BodyFailed,
            BodyEnd::Dropped => Outcome::Dropped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn an_error_is_a_failed_try_or_a_5xx_answer() {
        let inst =
            InstanceState::new(fulcrum_config::parse_endpoint("http://127.0.0.1:1").unwrap());
        let ms = Duration::from_millis;
        let head = |code: u16, took| Some((StatusCode::from_u16(code).unwrap(), took));
        counted(&inst, head(200, ms(10)), false, 1_000);
        counted(&inst, head(404, ms(10)), false, 1_000); // the caller's mistake
        counted(&inst, head(500, ms(10)), false, 1_000); // passed on, still an error
        counted(&inst, head(429, ms(10)), true, 1_000); // listed in retry.on
        counted(&inst, head(101, ms(10)), true, 1_000); // an unasked switch
        counted(&inst, None, true, 1_000); // refused, reset, timed out
        let w = inst.window.stats(1_000);
        assert_eq!((w.requests, w.errors), (6, 4));
        assert_eq!(inst.window.totals(), (6, 4));
        let s = inst.stats(1_000);
        assert_eq!((s.errors, s.error_rate), (4, 4.0 / 6.0));
        let p50 = w.p50_ms.unwrap();
        assert!((p50 - 10.0).abs() < 0.7, "only heads are timed: {p50}");
    }

    #[test]
    fn retry_after_takes_seconds_and_caps_them() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_secs(&h), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after_secs(&h), Some(7));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(retry_after_secs(&h), Some(300));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after_secs(&h), None, "the date form is not used");
    }
}
