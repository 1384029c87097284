//! Sending one try to an instance on a pooled keep-alive HTTP/1.1
//! connection (or a fresh one), bounded by the connect and response-head
//! timeouts.
//!
//! A request that a pooled connection could not even start writing (the
//! instance had closed it) is moved to a fresh connection transparently,
//! using hyper's `try_send_request`, which gives the request back in that
//! case — so even a streaming body is safe.
//!
//! We drive `hyper::client::conn::http1` directly instead of hyper-util's
//! pooled client: the profile of the overhead benchmark showed its
//! per-request checkout machinery (boxed futures, hashed pool keys, a
//! select) as a sizeable share of the proxy's user-space time.

use super::dial::{DialError, Stream};
use super::error::{classify, describe, TryError};
use super::pool::{Origin, Pooled, Sender};
use crate::http::body::ProxyBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::time::Instant;

/// A try's bounds: the connect (and TLS handshake) timeout, and how long
/// to wait for the response head in all.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub connect: Duration,
    pub head: Duration,
}

/// Sends `req` (origin-form URI, `Host` set) to `origin` on a pooled or
/// new connection and waits for the response head.
pub async fn send(
    origin: &Origin,
    req: http::Request<ProxyBody>,
    limits: Deadlines,
) -> Result<(http::Response<Incoming>, Pooled), TryError> {
    match tokio::time::timeout(limits.head, send_on_pool(origin, req, limits.connect)).await {
        Ok(r) => r,
        Err(_) => Err(TryError::timeout(limits.head)),
    }
}

/// Sends a WebSocket handshake on a connection of its own (an upgraded
/// connection never returns to the pool). The connection is driven with
/// upgrades enabled, so a `101` answer hands over the raw stream.
pub async fn send_upgrade(
    origin: &Origin,
    req: http::Request<ProxyBody>,
    limits: Deadlines,
) -> Result<(http::Response<Incoming>, Pooled), TryError> {
    match tokio::time::timeout(limits.head, upgrade(origin, req, limits.connect)).await {
        Ok(r) => r,
        Err(_) => Err(TryError::timeout(limits.head)),
    }
}

/// Sends `req` on a new connection of its own, closed once the answer is
/// read: health probes, which check that the instance accepts connections
/// and leave the pool's keep-alive connections to requests.
pub async fn send_fresh(
    origin: &Origin,
    req: http::Request<ProxyBody>,
    limits: Deadlines,
) -> Result<http::Response<Incoming>, TryError> {
    match tokio::time::timeout(limits.head, fresh(origin, req, limits.connect)).await {
        Ok(r) => r,
        Err(_) => Err(TryError::timeout(limits.head)),
    }
}

async fn fresh(
    origin: &Origin,
    req: http::Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<http::Response<Incoming>, TryError> {
    let (mut tx, conn) = match Box::pin(open(origin, connect_timeout)).await {
        Ok(x) => x,
        Err(e) => return Err(dial_failed(e, req)),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::trace!(error = %e, "a one-off upstream connection ended with an error");
        }
    });
    match tx.try_send_request(req).await {
        Ok(resp) => Ok(resp),
        Err(mut e) => match e.take_message() {
            Some(r) => Err(TryError::never_sent(describe(e.error()), r)),
            None => Err(classify(e.error())),
        },
    }
}

async fn send_on_pool(
    origin: &Origin,
    mut req: http::Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<(http::Response<Incoming>, Pooled), TryError> {
    loop {
        // The connect time is measured (two clock reads) only when a
        // connection is opened: a pooled one counts as zero, as in nginx.
        let (mut tx, connect) = match origin.conns.take() {
            Some(tx) => (tx, None),
            // Boxed: the connect path is rare on a warm pool, and inlining its
            // state would make every request's future (moved around by
            // hyper) larger.
            None => {
                let t0 = Instant::now();
                match Box::pin(connect(origin, connect_timeout)).await {
                    Ok(tx) => (tx, Some(t0.elapsed())),
                    Err(e) => return Err(dial_failed(e, req)),
                }
            }
        };
        let reused = connect.is_none();
        if reused && tx.ready().await.is_err() {
            continue;
        }
        match tx.try_send_request(req).await {
            Ok(resp) => {
                let conn = Pooled::new(tx, origin.conns.clone(), connect.unwrap_or_default());
                return Ok((resp, conn));
            }
            Err(mut e) => match e.take_message() {
                // Never written: the instance had closed this idle
                // connection. Safe to send on a fresh one.
                Some(r) if reused => req = r,
                Some(r) => return Err(TryError::never_sent(describe(e.error()), r)),
                None => return Err(classify(e.error())),
            },
        }
    }
}

async fn upgrade(
    origin: &Origin,
    req: http::Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<(http::Response<Incoming>, Pooled), TryError> {
    let t0 = Instant::now();
    let (mut tx, conn) = match Box::pin(open(origin, connect_timeout)).await {
        Ok(x) => x,
        Err(e) => return Err(dial_failed(e, req)),
    };
    let connect = t0.elapsed();
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::trace!(error = %e, "upstream upgrade connection ended with an error");
        }
    });
    match tx.try_send_request(req).await {
        Ok(resp) => Ok((resp, Pooled::new(tx, origin.conns.clone(), connect))),
        Err(mut e) => match e.take_message() {
            Some(r) => Err(TryError::never_sent(describe(e.error()), r)),
            None => Err(classify(e.error())),
        },
    }
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<Stream>, ProxyBody>;

/// A new connection to `origin` and the future that drives it. The
/// timeout covers the TCP connect and, for `https://`, the TLS handshake.
async fn open(origin: &Origin, timeout: Duration) -> Result<(Sender, Connection), DialError> {
    let stream = match tokio::time::timeout(timeout, origin.dial()).await {
        Err(_) => {
            return Err(DialError {
                detail: format!(
                    "connect to {} timed out after {timeout:?}",
                    origin.endpoint.authority
                ),
                local: false,
            })
        }
        Ok(r) => r?,
    };
    hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| DialError {
            detail: describe(&e),
            local: false,
        })
}

async fn connect(origin: &Origin, timeout: Duration) -> Result<Sender, DialError> {
    let (tx, conn) = open(origin, timeout).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::trace!(error = %e, "upstream connection closed with an error");
        }
    });
    Ok(tx)
}

/// A connection that could not be opened: the instance's connect error
/// (the request handed back for another instance), or a local limit.
fn dial_failed(e: DialError, req: http::Request<ProxyBody>) -> TryError {
    if e.local {
        TryError::Local { detail: e.detail }
    } else {
        TryError::never_sent(e.detail, req)
    }
}
