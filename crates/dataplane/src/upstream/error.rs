//! What can go wrong on one try, classified once: who is to blame and
//! whether the failure is the instance's (recorded against it, and
//! retried when the pool's `retry` policy says so). The attempt loop asks
//! a [`TryError`]; it does not match on causes.

use crate::http::body::{BoxError, IdleTimeout, ProxyBody};
use crate::http::error::{Blame, ProxyError};
use fulcrum_policy::retry::Failure;
use std::time::Duration;

/// Why a try produced no response head.
#[derive(Debug)]
pub enum TryError {
    /// The instance failed; `failure` says how. `unsent` gives the request
    /// back when it certainly never left (connect error), so even a
    /// streaming body can go to another instance.
    Instance {
        failure: Failure,
        detail: String,
        unsent: Option<Box<http::Request<ProxyBody>>>,
    },
    /// The gateway could not open a connection for want of a local
    /// resource (file descriptors, ports): not the instance's fault.
    Local { detail: String },
    /// The caller's body went over `limits.max_body` while streaming.
    BodyTooLarge,
    /// The caller's body failed (aborted, malformed, or silent for longer
    /// than `timeouts.idle`): not the instance's fault.
    Downstream { idle: bool, detail: String },
}

impl TryError {
    /// No response head within `wait`.
    pub fn timeout(wait: Duration) -> Self {
        TryError::Instance {
            failure: Failure::Timeout,
            detail: format!("no response head within {wait:?}"),
            unsent: None,
        }
    }

    /// A try that failed before the request was written: a connect
    /// error, with the request given back so it can go elsewhere.
    pub fn never_sent(detail: String, req: http::Request<ProxyBody>) -> Self {
        TryError::Instance {
            failure: Failure::ConnectError,
            detail,
            unsent: Some(Box::new(req)),
        }
    }

    /// Who caused it.
    pub fn blame(&self) -> Blame {
        match self {
            TryError::Instance { .. } => Blame::Upstream,
            TryError::Local { .. } => Blame::Gateway,
            TryError::BodyTooLarge | TryError::Downstream { .. } => Blame::Downstream,
        }
    }

    /// The instance's failure, for passive ejection and the retry
    /// decision; `None` when the instance is not to blame.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            TryError::Instance { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// The request back, when it never left.
    pub fn take_unsent(&mut self) -> Option<http::Request<ProxyBody>> {
        match self {
            TryError::Instance { unsent, .. } => unsent.take().map(|r| *r),
            _ => None,
        }
    }

    /// The error the caller gets (when no retry follows).
    pub fn into_proxy_error(self, pool: &str, max_body: u64, idle: Duration) -> ProxyError {
        match self {
            TryError::Instance {
                failure, detail, ..
            } => ProxyError::Upstream {
                pool: pool.to_string(),
                failure,
                detail,
            },
            TryError::Local { detail } => ProxyError::Exhausted {
                pool: pool.to_string(),
                detail,
            },
            TryError::BodyTooLarge => ProxyError::BodyTooLarge { limit: max_body },
            TryError::Downstream { idle: true, .. } => ProxyError::ClientTimeout(idle),
            TryError::Downstream { detail, .. } => ProxyError::BadRequest(detail),
        }
    }
}

/// Maps a failed exchange to the retry condition it represents, or to the
/// caller when it was the caller's body that failed.
pub fn classify(err: &hyper::Error) -> TryError {
    if is_too_large(err) {
        return TryError::BodyTooLarge;
    }
    if err.is_user() {
        return TryError::Downstream {
            idle: caused_by::<IdleTimeout>(err),
            detail: describe(err),
        };
    }
    let failure = if err.is_parse() || err.is_parse_status() {
        Failure::InvalidResponse
    } else {
        Failure::Reset
    };
    TryError::Instance {
        failure,
        detail: describe(err),
        unsent: None,
    }
}

/// Human text for an error, walking its causes.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// Whether `err` or any of its causes is an `E`.
pub fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<E>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Whether an error (or any of its causes) is the request-body size limit.
pub fn is_too_large(err: &(dyn std::error::Error + 'static)) -> bool {
    caused_by::<http_body_util::LengthLimitError>(err)
}

/// The error a failed read of the caller's body becomes.
pub fn body_read_error(e: BoxError, max_body: u64, idle: Duration) -> ProxyError {
    if is_too_large(e.as_ref()) {
        ProxyError::BodyTooLarge { limit: max_body }
    } else if caused_by::<IdleTimeout>(e.as_ref()) {
        ProxyError::ClientTimeout(idle)
    } else {
        ProxyError::BadRequest(format!("reading the request body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_instance_failures_are_the_instances_and_retryable() {
        let t = TryError::timeout(Duration::from_secs(1));
        assert_eq!(t.blame(), Blame::Upstream);
        assert_eq!(t.failure(), Some(Failure::Timeout));
        let local = TryError::Local {
            detail: "EMFILE".into(),
        };
        assert_eq!(local.blame(), Blame::Gateway);
        assert_eq!(local.failure(), None);
        assert_eq!(TryError::BodyTooLarge.failure(), None);
        assert_eq!(TryError::BodyTooLarge.blame(), Blame::Downstream);
    }

    #[test]
    fn a_connect_error_gives_the_request_back() {
        let req = http::Request::new(crate::http::body::empty());
        let mut e = TryError::never_sent("refused".into(), req);
        assert_eq!(e.failure(), Some(Failure::ConnectError));
        assert!(e.take_unsent().is_some());
        assert!(e.take_unsent().is_none(), "only once");
    }

    #[test]
    fn errors_map_to_the_callers_status() {
        let idle = Duration::from_secs(5);
        let err = |e: TryError| e.into_proxy_error("p", 10, idle).status().as_u16();
        assert_eq!(err(TryError::timeout(idle)), 504);
        assert_eq!(
            err(TryError::Local {
                detail: String::new()
            }),
            503
        );
        assert_eq!(err(TryError::BodyTooLarge), 413);
        assert_eq!(
            err(TryError::Downstream {
                idle: true,
                detail: String::new()
            }),
            408
        );
        assert_eq!(
            err(TryError::Downstream {
                idle: false,
                detail: String::new()
            }),
            400
        );
    }

    #[tokio::test]
    async fn causes_are_found_through_the_chain() {
        use http_body_util::BodyExt;
        let over = http_body_util::Limited::new(
            http_body_util::Full::new(bytes::Bytes::from("abcdef")),
            2,
        );
        let limit: BoxError = over.collect().await.unwrap_err();
        assert!(is_too_large(limit.as_ref()));
        assert_eq!(body_read_error(limit, 7, Duration::ZERO).status(), 413);
        let idle: BoxError = Box::new(IdleTimeout(Duration::from_secs(1)));
        assert_eq!(
            body_read_error(idle, 7, Duration::from_secs(1)).status(),
            408
        );
    }
}
