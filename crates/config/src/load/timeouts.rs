//! A pool's `timeouts:` merged over the global ones (the listener's
//! `client_header` and `keepalive` are in `listen`), and the millisecond conversion the
//! health settings share.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_RESPONSE_HEADER_TIMEOUT,
};
use crate::file::FileTimeouts;
use crate::model::Timeouts;
use crate::units::Dur;
use std::time::Duration;

/// Whole milliseconds of `d` (or of `default`), saturating.
pub(super) fn millis(d: Option<Dur>, default: Duration) -> u64 {
    d.map_or(default, |d| d.0)
        .as_millis()
        .min(u128::from(u64::MAX)) as u64
}

/// A pool's `timeouts:` (`t`) over the global one (`g`); `path` is the pool's.
/// A zero value is reported where it is written.
pub(super) fn merge_timeouts(
    g: &FileTimeouts,
    t: Option<&FileTimeouts>,
    path: &str,
    errs: &mut Errors,
) -> Timeouts {
    let pick = |f: fn(&FileTimeouts) -> Option<Dur>, d: Duration| {
        Duration::from_millis(millis(t.and_then(f).or(f(g)), d))
    };
    let timeouts = Timeouts {
        connect: pick(|x| x.connect, DEFAULT_CONNECT_TIMEOUT),
        response_header: pick(|x| x.response_header, DEFAULT_RESPONSE_HEADER_TIMEOUT),
        idle: pick(|x| x.idle, DEFAULT_IDLE_TIMEOUT),
    };
    for (key, set) in [
        (
            "client_header",
            t.is_some_and(|t| t.client_header.is_some()),
        ),
        ("keepalive", t.is_some_and(|t| t.keepalive.is_some())),
    ] {
        if set {
            errs.push(
                &format!("{path}.timeouts.{key}"),
                "is a listener setting shared by every pool; set it in the top-level `timeouts:`"
                    .into(),
            );
        }
    }
    for (key, get) in [
        (
            "connect",
            (|x: &FileTimeouts| x.connect) as fn(&FileTimeouts) -> Option<Dur>,
        ),
        ("response_header", |x| x.response_header),
        ("idle", |x| x.idle),
    ] {
        if t.and_then(get).or(get(g)).is_some_and(|d| d.0.is_zero()) {
            let at = if t.and_then(get).is_some() {
                format!("{path}.timeouts.{key}")
            } else {
                format!("timeouts.{key}")
            };
            errs.push(&at, "must be greater than 0".into());
        }
    }
    timeouts
}
