//! The one error type of the data plane. Each variant knows who caused it
//! (the caller, an instance, or the gateway's own state) and which status
//! it answers with, so the status decision lives in one place. Errors the
//! gateway produces itself are JSON: `{"error", "pool", "request_id"}`.
//!
//! The message a caller reads (`Display`) never carries an instance's
//! address or the operating system's error text: a caller of the proxy
//! must not learn where instances are, nor use the proxy to scan ports.
//! That `detail` is for the log ([`ProxyError::detail`]).

use crate::http::body::{full, ProxyBody};
use fulcrum_policy::retry::Failure;
use http::{header, HeaderValue, Response, StatusCode};

/// Who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    Downstream,
    Upstream,
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matches this request")]
    NoRoute,
    #[error("no instance is registered for task type `{0}`")]
    NoService(String),
    #[error("pool has no instances")]
    NoInstances { pool: String },
    #[error("every instance of the pool is down")]
    AllDown { pool: String },
    #[error("every instance of the pool is drained by an operator")]
    AllDrained { pool: String },
    #[error("every instance is at max_concurrent and the queue is full")]
    QueueFull { pool: String },
    #[error("every instance stayed at max_concurrent for the whole queue timeout")]
    QueueTimeout { pool: String },
    #[error("the queue is full and this batch request gave its place to a higher-priority one")]
    QueueShed { pool: String },
    #[error("upstream failed: {}", public_reason(*.failure, .detail))]
    Upstream {
        pool: String,
        failure: Failure,
        detail: String,
    },
    #[error("request body larger than the {limit}-byte limit")]
    BodyTooLarge { limit: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not implemented: {0}")]
    NotImplemented(String),
    #[error("the request body stalled for longer than {0:?} (timeouts.idle)")]
    ClientTimeout(std::time::Duration),
    #[error("the gateway is out of resources")]
    Exhausted { pool: String, detail: String },
}

/// What a caller is told of an instance's failure: a fixed phrase per
/// kind, chosen from the detail, never the detail itself.
fn public_reason(failure: Failure, detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    match failure {
        Failure::ConnectError if d.contains("refused") => "connection refused",
        Failure::ConnectError if d.contains("timed out") => "connect timed out",
        Failure::ConnectError if d.contains("certificate") => {
            "TLS handshake failed: the instance's certificate was not accepted"
        }
        Failure::ConnectError if d.contains("tls") => "TLS handshake failed",
        Failure::ConnectError => "could not connect",
        Failure::Reset => "connection reset",
        Failure::InvalidResponse => "invalid response",
        Failure::Timeout => "timeout waiting for the response head",
        Failure::Status(_) => "error status",
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute | ProxyError::NoService(_) => StatusCode::NOT_FOUND,
            ProxyError::NoInstances { .. }
            | ProxyError::AllDown { .. }
            | ProxyError::AllDrained { .. }
            | ProxyError::QueueFull { .. }
            | ProxyError::QueueTimeout { .. }
            | ProxyError::QueueShed { .. }
            | ProxyError::Exhausted { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Upstream {
                failure: Failure::Timeout,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::ClientTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn blame(&self) -> Blame {
        match self {
            ProxyError::NoRoute
            | ProxyError::NoService(_)
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::BadRequest(_)
            | ProxyError::NotImplemented(_)
            | ProxyError::ClientTimeout(_) => Blame::Downstream,
            ProxyError::Upstream { .. } | ProxyError::AllDown { .. } => Blame::Upstream,
            ProxyError::NoInstances { .. }
            | ProxyError::AllDrained { .. }
            | ProxyError::QueueFull { .. }
            | ProxyError::QueueTimeout { .. }
            | ProxyError::QueueShed { .. }
            | ProxyError::Exhausted { .. } => Blame::Gateway,
        }
    }

    pub fn pool(&self) -> Option<&str> {
        match self {
            ProxyError::NoInstances { pool }
            | ProxyError::AllDown { pool }
            | ProxyError::AllDrained { pool }
            | ProxyError::QueueFull { pool }
            | ProxyError::QueueTimeout { pool }
            | ProxyError::QueueShed { pool }
            | ProxyError::Exhausted { pool, .. }
            | ProxyError::Upstream { pool, .. } => Some(pool),
            _ => None,
        }
    }

    /// What the log gets beyond [`Display`](std::fmt::Display): the
    /// instance's address and the system's error text.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ProxyError::Upstream { detail, .. } | ProxyError::Exhausted { detail, .. } => {
                Some(detail)
            }
            _ => None,
        }
    }

    /// Seconds a caller should wait before trying again, for 503s.
    fn retry_after(&self) -> Option<u32> {
        match self {
            ProxyError::AllDown { .. }
            | ProxyError::AllDrained { .. }
            | ProxyError::NoInstances { .. } => Some(5),
            ProxyError::QueueFull { .. }
            | ProxyError::QueueTimeout { .. }
            | ProxyError::QueueShed { .. }
            | ProxyError::Exhausted { .. } => Some(1),
            _ => None,
        }
    }

    pub fn to_response(&self, request_id: &HeaderValue) -> Response<ProxyBody> {
        let body = serde_json::json!({
            "error": self.to_string(),
            "pool": self.pool(),
            "request_id": request_id.to_str().unwrap_or_default(),
        });
        let mut resp = Response::new(full(body.to_string()));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(crate::http::headers::X_REQUEST_ID, request_id.clone());
        if let Some(s) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_cause() {
        let up = |failure| ProxyError::Upstream {
            pool: "p".into(),
            failure,
            detail: String::new(),
        };
        assert_eq!(up(Failure::Timeout).status(), 504);
        assert_eq!(up(Failure::ConnectError).status(), 502);
        assert_eq!(up(Failure::InvalidResponse).status(), 502);
        assert_eq!(ProxyError::AllDown { pool: "p".into() }.status(), 503);
        assert_eq!(ProxyError::BodyTooLarge { limit: 1 }.status(), 413);
        assert_eq!(ProxyError::NoRoute.blame(), Blame::Downstream);
    }

    #[test]
    fn callers_read_no_address_and_no_system_error() {
        let e = ProxyError::Upstream {
            pool: "p".into(),
            failure: Failure::ConnectError,
            detail: "connect to 10.0.0.5:22: Connection refused (os error 111)".into(),
        };
        assert_eq!(e.to_string(), "upstream failed: connection refused");
        assert_eq!(
            e.detail(),
            Some("connect to 10.0.0.5:22: Connection refused (os error 111)")
        );
        let e = ProxyError::Exhausted {
            pool: "p".into(),
            detail: "cannot open a connection to 10.0.0.5:22: Too many open files".into(),
        };
        assert_eq!(e.to_string(), "the gateway is out of resources");
    }

    #[test]
    fn all_down_is_json_with_retry_after() {
        let r = ProxyError::AllDown { pool: "asr".into() }
            .to_response(&HeaderValue::from_static("abc"));
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
