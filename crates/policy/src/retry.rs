//! The retry decision: given what went wrong with one try, may the request
//! be sent again to a different instance?
//!
//! Conditions follow nginx's `proxy_next_upstream` vocabulary:
//! `connect_error`, `reset`, `invalid_response`, `error` (all three),
//! `timeout`, and `http_NNN`. A POST is not idempotent and is replayed only
//! when it never reached an instance (connect error), unless the pool says
//! `non_idempotent: true` (usual for inference, where a POST has no side
//! effect). A response that has started streaming to the caller is never
//! retried: the proxy simply stops consulting this module once it has
//! handed the response over.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What went wrong with one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused, unreachable, or the connect timed out: the request never left.
    ConnectError,
    /// Connection closed or reset before a complete response head.
    Reset,
    /// The instance did not speak HTTP.
    InvalidResponse,
    /// No response head within `timeouts.response_header`.
    Timeout,
    /// A complete response with this status.
    Status(u16),
}

impl Failure {
    /// Whether the request certainly never reached the instance.
    pub fn never_sent(self) -> bool {
        matches!(self, Failure::ConnectError)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ConnectError => f.write_str("connect_error"),
            Failure::Reset => f.write_str("reset"),
            Failure::InvalidResponse => f.write_str("invalid_response"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Status(s) => write!(f, "http_{s}"),
        }
    }
}

/// The set of retryable conditions (`retry.on`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    pub connect_error: bool,
    pub reset: bool,
    pub invalid_response: bool,
    pub timeout: bool,
    pub statuses: Vec<u16>,
}

impl RetryOn {
    /// The default `[error, timeout]`.
    pub fn default_conditions() -> Self {
        Self {
            connect_error: true,
            reset: true,
            invalid_response: true,
            timeout: true,
            statuses: vec![],
        }
    }

    /// Adds one condition by name (`error`, `http_503`, …).
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        match name {
            "connect_error" => self.connect_error = true,
            "reset" => self.reset = true,
            "invalid_response" => self.invalid_response = true,
            "error" => {
                self.connect_error = true;
                self.reset = true;
                self.invalid_response = true;
            }
            "timeout" => self.timeout = true,
            other => {
                let status = other
                    .strip_prefix("http_")
                    .and_then(|s| s.parse::<u16>().ok())
                    .filter(|s| (400..=599).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "unknown retry condition `{other}`; expected error, connect_error, reset, \
                             invalid_response, timeout or http_NNN with NNN a 4xx/5xx status"
                        )
                    })?;
                if !self.statuses.contains(&status) {
                    self.statuses.push(status);
                }
            }
        }
        Ok(())
    }

    pub fn matches(&self, failure: Failure) -> bool {
        match failure {
            Failure::ConnectError => self.connect_error,
            Failure::Reset => self.reset,
            Failure::InvalidResponse => self.invalid_response,
            Failure::Timeout => self.timeout,
            Failure::Status(s) => self.statuses.contains(&s),
        }
    }
}

impl FromStr for RetryOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut on = RetryOn::default();
        on.add(s)?;
        Ok(on)
    }
}

/// A pool's `retry:` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries including the first; 1 = no retry.
    pub tries: u32,
    pub on: RetryOn,
    /// Budget for all tries together; `None` = unbounded.
    pub timeout: Option<Duration>,
    pub non_idempotent: bool,
    /// Largest request body kept for replay.
    pub buffer: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            tries: 2,
            on: RetryOn::default_conditions(),
            timeout: None,
            non_idempotent: false,
            buffer: 1 << 20,
        }
    }
}

/// Everything about a request that the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Tries made so far, including the one that just failed.
    pub tries_made: u32,
    pub idempotent: bool,
    /// The body can be sent again (empty, or fully buffered).
    pub replayable: bool,
    /// Time since the first try started.
    pub elapsed: Duration,
}

/// Why a failed try is or is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry,
    NoTriesLeft,
    ConditionNotListed,
    NotIdempotent,
    BodyNotReplayable,
    BudgetSpent,
}

/// Decides whether `failure` on `attempt` is retried under `policy`.
pub fn decide(policy: &RetryPolicy, failure: Failure, attempt: Attempt) -> Decision {
    if attempt.tries_made >= policy.tries {
        Decision::NoTriesLeft
    } else if !policy.on.matches(failure) {
        Decision::ConditionNotListed
    } else if !attempt.idempotent && !policy.non_idempotent && !failure.never_sent() {
        Decision::NotIdempotent
    } else if !attempt.replayable {
        Decision::BodyNotReplayable
    } else if policy.timeout.is_some_and(|t| attempt.elapsed >= t) {
        Decision::BudgetSpent
    } else {
        Decision::Retry
    }
}

/// RFC 9110 §9.2.2 idempotent methods.
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attempt(tries_made: u32, idempotent: bool) -> Attempt {
        Attempt {
            tries_made,
            idempotent,
            replayable: true,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn default_retries_errors_and_timeouts_once() {
        let p = RetryPolicy::default();
        for f in [
            Failure::ConnectError,
            Failure::Reset,
            Failure::InvalidResponse,
            Failure::Timeout,
        ] {
            assert_eq!(decide(&p, f, attempt(1, true)), Decision::Retry, "{f}");
            assert_eq!(
                decide(&p, f, attempt(2, true)),
                Decision::NoTriesLeft,
                "{f}"
            );
        }
        assert_eq!(
            decide(&p, Failure::Status(502), attempt(1, true)),
            Decision::ConditionNotListed
        );
    }

    #[test]
    fn post_is_retried_only_on_connect_error_unless_allowed() {
        let mut p = RetryPolicy::default();
        assert_eq!(
            decide(&p, Failure::ConnectError, attempt(1, false)),
            Decision::Retry
        );
        assert_eq!(
            decide(&p, Failure::Reset, attempt(1, false)),
            Decision::NotIdempotent
        );
        assert_eq!(
            decide(&p, Failure::Timeout, attempt(1, false)),
            Decision::NotIdempotent
        );
        p.non_idempotent = true;
        assert_eq!(
            decide(&p, Failure::Reset, attempt(1, false)),
            Decision::Retry
        );
    }

    #[test]
    fn statuses_and_error_group_parse() {
        let mut on = RetryOn::default();
        on.add("error").unwrap();
        on.add("http_503").unwrap();
        assert!(on.matches(Failure::Reset) && on.matches(Failure::Status(503)));
        assert!(!on.matches(Failure::Timeout) && !on.matches(Failure::Status(502)));
        assert!(on.add("http_200").is_err());
        assert!(on.add("sometimes").unwrap_err().contains("sometimes"));
    }

    #[test]
    fn unreplayable_body_and_spent_budget_stop_retries() {
        let p = RetryPolicy {
            timeout: Some(Duration::from_secs(3)),
            ..RetryPolicy::default()
        };
        let a = Attempt {
            replayable: false,
            ..attempt(1, true)
        };
        assert_eq!(decide(&p, Failure::Reset, a), Decision::BodyNotReplayable);
        let a = Attempt {
            elapsed: Duration::from_secs(3),
            ..attempt(1, true)
        };
        assert_eq!(decide(&p, Failure::Reset, a), Decision::BudgetSpent);
    }

    proptest! {
        #[test]
        fn retry_implies_every_precondition(
            tries in 1u32..5, made in 1u32..6, idem: bool, replay: bool, non_idem: bool,
            kind in 0usize..5, status in 400u16..600, elapsed in 0u64..10, budget in proptest::option::of(0u64..10),
        ) {
            let failure = [Failure::ConnectError, Failure::Reset, Failure::InvalidResponse, Failure::Timeout, Failure::Status(status)][kind];
            let mut on = RetryOn::default_conditions();
            on.statuses.push(503);
            let p = RetryPolicy { tries, on, timeout: budget.map(Duration::from_secs), non_idempotent: non_idem, buffer: 0 };
            let a = Attempt { tries_made: made, idempotent: idem, replayable: replay, elapsed: Duration::from_secs(elapsed) };
            if decide(&p, failure, a) == Decision::Retry {
                prop_assert!(made < tries);
                prop_assert!(p.on.matches(failure));
                prop_assert!(idem || non_idem || failure == Failure::ConnectError);
                prop_assert!(replay);
                prop_assert!(budget.is_none_or(|b| elapsed < b));
            }
        }
    }
}
