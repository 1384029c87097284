//! The client side: keep-alive HTTP/1.1 connections to instances, pooled
//! per instance, and the classification of what can go wrong on a try into
//! the retry vocabulary.
//!
//! Each instance keeps a stack of idle connections (most recently used on
//! top, so idle ones age out at the bottom). A connection is handed back
//! only when its response body has been read to the end; one dropped
//! half-way is closed. A request that a pooled connection could not even
//! start writing (the instance had closed it) is moved to a fresh
//! connection transparently, using hyper's `try_send_request`, which gives
//! the request back in that case — so even a streaming body is safe.
//!
//! We drive `hyper::client::conn::http1` directly instead of hyper-util's
//! pooled client: the profile of the overhead benchmark showed its
//! per-request checkout machinery (boxed futures, hashed pool keys, a
//! select) as a sizeable share of the proxy's user-space time.

use crate::body::ProxyBody;
use crate::instance::InstanceState;
use crate::tls::{DialError, Stream};
use fulcrum_policy::retry::Failure;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Idle connections kept per instance; beyond this the oldest is closed.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

type Sender = SendRequest<ProxyBody>;

/// Idle keep-alive connections to one instance.
#[derive(Debug, Default)]
pub struct ConnPool {
    idle: Mutex<Vec<(Sender, Instant)>>,
}

impl ConnPool {
    fn take(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((tx, at)) = idle.pop() {
            if at.elapsed() > IDLE_TIMEOUT {
                // Everything below is older still.
                idle.clear();
                return None;
            }
            if !tx.is_closed() {
                return Some(tx);
            }
        }
        None
    }

    fn put(&self, tx: Sender) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((tx, Instant::now()));
    }

    /// Idle connections right now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A connection in use; [`Pooled::give_back`] returns it to its instance's pool.
#[derive(Debug)]
pub struct Pooled {
    tx: Sender,
    inst: Arc<InstanceState>,
}

impl Pooled {
    pub fn give_back(self) {
        self.inst.conns.put(self.tx);
    }
}

/// Why a try produced no response.
#[derive(Debug)]
pub enum SendError {
    /// The instance failed; `failure` says how. `unsent` gives the request
    /// back when it certainly never left (connect error), so even a
    /// streaming body can go to another instance.
    Failed {
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

/// Sends `req` (origin-form URI, `Host` set) to `inst` on a pooled or new
/// connection.
pub async fn send(
    inst: &Arc<InstanceState>,
    mut req: http::Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<(http::Response<Incoming>, Pooled), SendError> {
    loop {
        let (mut tx, reused) = match inst.conns.take() {
            Some(tx) => (tx, true),
            // Boxed: the connect path is rare on a warm pool, and inlining its
            // state would make every request's future (moved around by
            // hyper) larger.
            None => match Box::pin(connect(inst, connect_timeout)).await {
                Ok(tx) => (tx, false),
                Err(e) => return Err(dial_failed(e, req)),
            },
        };
        if reused && tx.ready().await.is_err() {
            continue;
        }
        match tx.try_send_request(req).await {
            Ok(resp) => {
                return Ok((
                    resp,
                    Pooled {
                        tx,
                        inst: inst.clone(),
                    },
                ))
            }
            Err(mut e) => match e.take_message() {
                // Never written: the instance had closed this idle
                // connection. Safe to send on a fresh one.
                Some(r) if reused => req = r,
                Some(r) => return Err(never_sent(describe(e.error()), r)),
                None => return Err(classify(e.error())),
            },
        }
    }
}

/// Sends a WebSocket handshake on a connection of its own (an upgraded
/// connection never returns to the pool). The connection is driven with
/// upgrades enabled, so a `101` answer hands over the raw stream.
pub async fn send_upgrade(
    inst: &Arc<InstanceState>,
    req: http::Request<ProxyBody>,
    connect_timeout: Duration,
) -> Result<(http::Response<Incoming>, Pooled), SendError> {
    let (mut tx, conn) = match Box::pin(open(inst, connect_timeout)).await {
        Ok(x) => x,
        Err(e) => return Err(dial_failed(e, req)),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::trace!(error = %e, "upstream upgrade connection ended with an error");
        }
    });
    match tx.try_send_request(req).await {
        Ok(resp) => Ok((
            resp,
            Pooled {
                tx,
                inst: inst.clone(),
            },
        )),
        Err(mut e) => match e.take_message() {
            Some(r) => Err(never_sent(describe(e.error()), r)),
            None => Err(classify(e.error())),
        },
    }
}

type Connection = hyper::client::conn::http1::Connection<TokioIo<Stream>, ProxyBody>;

/// A new connection to `inst` and the future that drives it. The timeout
/// covers the TCP connect and, for `https://`, the TLS handshake.
async fn open(inst: &InstanceState, timeout: Duration) -> Result<(Sender, Connection), DialError> {
    let stream = match tokio::time::timeout(timeout, inst.dial()).await {
        Err(_) => {
            return Err(DialError {
                detail: format!(
                    "connect to {} timed out after {timeout:?}",
                    inst.endpoint.authority
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

async fn connect(inst: &InstanceState, timeout: Duration) -> Result<Sender, DialError> {
    let (tx, conn) = open(inst, timeout).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::trace!(error = %e, "upstream connection closed with an error");
        }
    });
    Ok(tx)
}

/// A connection that could not be opened: the instance's connect error
/// (the request handed back for another instance), or a local limit.
fn dial_failed(e: DialError, req: http::Request<ProxyBody>) -> SendError {
    if e.local {
        SendError::Local { detail: e.detail }
    } else {
        never_sent(e.detail, req)
    }
}

/// A try that failed before the request was written: a connect error,
/// with the request given back so it can go to another instance.
fn never_sent(detail: String, req: http::Request<ProxyBody>) -> SendError {
    SendError::Failed {
        failure: Failure::ConnectError,
        detail,
        unsent: Some(Box::new(req)),
    }
}

/// Maps a failed exchange to the retry condition it represents, or to the
/// caller when it was the caller's body that failed.
fn classify(err: &hyper::Error) -> SendError {
    if is_too_large(err) {
        return SendError::BodyTooLarge;
    }
    if err.is_user() {
        let idle = caused_by::<crate::body::IdleTimeout>(err);
        return SendError::Downstream {
            idle,
            detail: describe(err),
        };
    }
    let failure = if err.is_parse() || err.is_parse_status() {
        Failure::InvalidResponse
    } else {
        Failure::Reset
    };
    SendError::Failed {
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
