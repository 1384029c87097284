//! The proxy listener: accepts connections (bounded by
//! `limits.max_connections`), serves HTTP/1.1 with keep-alive and HTTP/2
//! (h2c prior knowledge) on the same port, enforces the request-head
//! timeout (slowloris) and size (`431`), and drains on shutdown.

use crate::proxy::{handle, Peer};
use crate::Gateway;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Settings fixed for the life of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerOptions {
    pub client_header: Duration,
    pub max_header: usize,
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub grace: Duration,
}

impl ListenerOptions {
    /// What differs between two configs in settings a running listener
    /// cannot change (they need a restart): the reload applies the rest.
    pub fn fixed_changes(
        old: &fulcrum_config::Config,
        new: &fulcrum_config::Config,
    ) -> Vec<&'static str> {
        let mut v = vec![];
        if old.listen != new.listen {
            v.push("listen");
        }
        if old.admin.listen != new.admin.listen {
            v.push("admin.listen");
        }
        if old.client_header != new.client_header {
            v.push("timeouts.client_header");
        }
        if old.limits.max_header != new.limits.max_header {
            v.push("limits.max_header");
        }
        if old.limits.max_connections != new.limits.max_connections {
            v.push("limits.max_connections");
        }
        if old.admin.token != new.admin.token {
            v.push("admin.token (for the native admin API)");
        }
        v
    }

    pub fn from_config(cfg: &fulcrum_config::Config) -> Self {
        Self {
            client_header: cfg.client_header,
            max_header: cfg.limits.max_header as usize,
            max_connections: cfg.limits.max_connections as usize,
            grace: Duration::from_secs(30),
        }
    }
}

/// Serves the proxy on `listener` until `shutdown` resolves, then stops
/// accepting and waits up to `opts.grace` for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    opts: ListenerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.client_header)
        .max_buf_size(opts.max_header.max(8192))
        .keep_alive(true)
        .writev(false);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let limit = Arc::new(Semaphore::new(opts.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        let caller = Arc::new(Peer::new(peer));
        let svc = service_fn(move |req| {
            let (gw, caller) = (gw.clone(), caller.clone());
            async move { Ok::<_, Infallible>(handle(gw, req, &caller).await) }
        });
        // With upgrades: WebSocket handshakes are proxied, then tunnelled.
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(opts.grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}
