//! A pool's `retry:`, over the defaults of [`RetryPolicy`].

use super::errors::Errors;
use crate::file::FileRetry;
use fulcrum_policy::retry::{RetryOn, RetryPolicy};

/// The named conditions of `retry.on` (besides `http_NNN`).
const RETRY_CONDITIONS: &[&str] = &[
    "error",
    "connect_error",
    "reset",
    "invalid_response",
    "timeout",
];

/// A pool's `retry:` (`path` is `pools.NAME.retry`).
pub(super) fn build_retry(r: FileRetry, path: &str, errs: &mut Errors) -> RetryPolicy {
    let d = RetryPolicy::default();
    let tries = r.tries.unwrap_or(d.tries);
    if tries == 0 {
        errs.push(
            &format!("{path}.tries"),
            "must be at least 1 (1 = no retry)".into(),
        );
    }
    let on = match r.on {
        None => d.on,
        Some(list) => {
            let mut on = RetryOn::default();
            for (i, c) in list.iter().enumerate() {
                if let Err(m) = on.add(c) {
                    // A near miss of a named condition gets a suggestion.
                    let named = crate::words::closest(c, RETRY_CONDITIONS).map(|s| {
                        format!("unknown retry condition `{}`; did you mean `{s}`?", &**c)
                    });
                    errs.push(&format!("{path}.on[{i}]"), named.unwrap_or(m));
                }
            }
            on
        }
    };
    RetryPolicy {
        tries: tries.max(1),
        on,
        timeout: r.timeout.map(|t| t.0),
        non_idempotent: r.non_idempotent.unwrap_or(d.non_idempotent),
        buffer: r
            .buffer
            .map_or(d.buffer, |b| b.0.min(usize::MAX as u64) as usize),
    }
}
