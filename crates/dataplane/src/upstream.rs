//! The client side: keep-alive connection pools to instances (hyper-util's
//! pooled client, one pool per `host:port`) and the classification of what
//! can go wrong on a try into the retry vocabulary.

use crate::body::ProxyBody;
use fulcrum_policy::retry::Failure;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::error::Error as _;
use std::time::Duration;

pub type Client = hyper_util::client::legacy::Client<HttpConnector, ProxyBody>;

/// A pooled HTTP/1.1 client whose connects give up after `connect_timeout`.
pub fn client(connect_timeout: Duration) -> Client {
    let mut conn = HttpConnector::new();
    conn.set_connect_timeout(Some(connect_timeout));
    conn.set_nodelay(true);
    conn.enforce_http(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(conn)
}

/// Maps a client error to the retry condition it represents.
pub fn classify(err: &hyper_util::client::legacy::Error) -> Failure {
    if err.is_connect() {
        return Failure::ConnectError;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return Failure::InvalidResponse;
            }
            return Failure::Reset;
        }
        source = e.source();
    }
    Failure::Reset
}

/// Human text for a client error, walking its causes.
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

/// Whether an error (or any of its causes) is the request-body size limit.
pub fn is_too_large(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}
