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

/// Checks one `timeouts:` section, the global one (`pool` false) or a
/// pool's (`path`), where its values are written. The listener's two
/// are checked in `listen`; a pool may not set them.
pub(super) fn check_timeouts(t: &FileTimeouts, path: &str, pool: bool, errs: &mut Errors) {
    if pool {
        for (key, set) in [
            ("client_header", t.client_header.is_some()),
            ("keepalive", t.keepalive.is_some()),
        ] {
            if set {
                errs.push(
                    &format!("{path}.{key}"),
                    "is a listener setting shared by every pool; set it in the top-level `timeouts:`"
                        .into(),
                );
            }
        }
    }
    let written = [
        ("connect", t.connect),
        ("response_header", t.response_header),
        ("idle", t.idle),
    ];
    check_positive(&written, path, errs);
}

/// Reports each duration of a section (`path`) written as zero.
pub(super) fn check_positive(written: &[(&str, Option<Dur>)], path: &str, errs: &mut Errors) {
    for (key, d) in written {
        if d.is_some_and(|d| d.0.is_zero()) {
            errs.push(&format!("{path}.{key}"), "must be greater than 0".into());
        }
    }
}

/// A pool's `timeouts:` (`t`) over the global one (`g`), both checked
/// already by [`check_timeouts`].
pub(super) fn merge_timeouts(g: &FileTimeouts, t: Option<&FileTimeouts>) -> Timeouts {
    let pick = |f: fn(&FileTimeouts) -> Option<Dur>, d: Duration| {
        Duration::from_millis(millis(t.and_then(f).or(f(g)), d))
    };
    Timeouts {
        connect: pick(|x| x.connect, DEFAULT_CONNECT_TIMEOUT),
        response_header: pick(|x| x.response_header, DEFAULT_RESPONSE_HEADER_TIMEOUT),
        idle: pick(|x| x.idle, DEFAULT_IDLE_TIMEOUT),
    }
}
