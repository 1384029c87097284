//! The proxy listener: accepts connections (bounded by
//! `limits.max_connections`), serves HTTP/1.1 with keep-alive and HTTP/2
//! (h2c prior knowledge) on the same port, enforces the request-head
//! timeout (slowloris) and size (`431`), and drains on shutdown.

use crate::http::Peer;
use crate::proxy::handle;
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
    /// Terminate TLS (settings from [`Gateway::listener_tls`]).
    pub tls: bool,
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
        if old.tls.is_some() != new.tls.is_some() {
            v.push("tls (turning TLS on or off; new certificate files apply at once)");
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
            tls: cfg.tls.is_some(),
        }
    }
}

/// Serves one caller connection with HTTP/1.1 or HTTP/2, with upgrades
/// (WebSocket handshakes are proxied, then tunnelled), to its end.
async fn connection<I>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    gw: Arc<Gateway>,
    caller: Peer,
    io: I,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = caller.addr;
    let caller = Arc::new(caller);
    let svc = service_fn(move |req| {
        let (gw, caller) = (gw.clone(), caller.clone());
        async move { Ok::<_, Infallible>(handle(gw, req, &caller).await) }
    });
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
        let (builder, gw, watcher) = (builder.clone(), gw.clone(), graceful.watcher());
        if !opts.tls {
            tokio::spawn(async move {
                connection(builder, gw, Peer::new(peer), stream, watcher).await;
                drop(permit);
            });
            continue;
        }
        // TLS: the handshake runs in the connection's task, bounded by the
        // request-head timeout, with the certificate in force right now
        // (a reload may have replaced it).
        let Some(cfg) = gw.listener_tls() else {
            tracing::error!("TLS listener without TLS settings; closing the connection");
            continue;
        };
        let deadline = opts.client_header;
        tokio::spawn(async move {
            let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
            match tokio::time::timeout(deadline, accept).await {
                Ok(Ok(tls)) => {
                    connection(builder, gw, Peer::new(peer).with_tls(), tls, watcher).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
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
