//! One instance as the client side sees it ([`Origin`]: where it is, how
//! to reach it, its idle keep-alive connections), and a connection in use
//! ([`Pooled`]), which goes back to its pool only when its response body
//! was read to the end.
//!
//! Each origin keeps a stack of idle connections (most recently used on
//! top, so idle ones age out at the bottom).

use super::dial::{DialError, Stream};
use crate::http::body::ProxyBody;
use crate::tls::Upstream;
use fulcrum_config::Endpoint;
use hyper::client::conn::http1::SendRequest;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Idle connections kept per instance; beyond this the oldest is closed.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type Sender = SendRequest<ProxyBody>;

/// Idle keep-alive connections to one instance.
#[derive(Debug, Default)]
pub struct ConnPool {
    idle: Mutex<Vec<(Sender, Instant)>>,
}

impl ConnPool {
    pub(crate) fn take(&self) -> Option<Sender> {
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

/// A connection in use; [`Pooled::give_back`] returns it to its pool.
#[derive(Debug)]
pub struct Pooled {
    tx: Sender,
    pool: Arc<ConnPool>,
    connect: std::time::Duration,
}

impl Pooled {
    /// `connect`: how long opening the connection took (zero when it was
    /// taken from the pool).
    pub(crate) fn new(tx: Sender, pool: Arc<ConnPool>, connect: std::time::Duration) -> Self {
        Self { tx, pool, connect }
    }

    /// How long opening this connection took for the try it carried: zero
    /// for a kept-alive one from the pool (nginx's `$upstream_connect_time`).
    pub fn connect_time(&self) -> std::time::Duration {
        self.connect
    }

    pub fn give_back(self) {
        self.pool.put(self.tx);
    }
}

/// An instance's address, `Host` value, TLS settings and connection pool.
#[derive(Debug)]
pub struct Origin {
    pub endpoint: Endpoint,
    /// `Host` header value for requests to this instance, built once.
    pub host: http::HeaderValue,
    pub conns: Arc<ConnPool>,
    /// TLS settings of an `https://` instance (set by each snapshot build).
    tls: arc_swap::ArcSwapOption<Upstream>,
    /// The gateway's own listeners, never connected to (set by each
    /// snapshot build from `Config::own_addrs`).
    own: arc_swap::ArcSwap<Vec<std::net::SocketAddr>>,
}

impl Origin {
    pub fn new(endpoint: Endpoint) -> Self {
        let host = http::HeaderValue::from_str(&endpoint.authority)
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid.invalid"));
        Self {
            endpoint,
            host,
            conns: Default::default(),
            tls: Default::default(),
            own: Default::default(),
        }
    }

    /// Sets the gateway's own listeners, which this origin never connects to.
    pub fn set_own(&self, own: &Arc<Vec<std::net::SocketAddr>>) {
        if **self.own.load() != **own {
            self.own.store(own.clone());
        }
    }

    /// Sets the TLS settings for an `https://` instance.
    pub fn set_tls(&self, tls: Option<Arc<Upstream>>) {
        self.tls.store(tls);
    }

    /// Opens a connection to the instance: TCP, plus TLS for `https://`.
    pub async fn dial(&self) -> Result<Stream, DialError> {
        if self.endpoint.scheme == "https" {
            let tls = self.tls.load_full().ok_or_else(|| DialError {
                detail: format!(
                    "no usable TLS settings for {} (see the error logged at load)",
                    self.endpoint.url
                ),
                local: false,
            })?;
            Stream::connect(&self.endpoint, Some(&tls), &self.own.load()).await
        } else {
            Stream::connect(&self.endpoint, None, &self.own.load()).await
        }
    }
}
