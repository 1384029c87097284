//! [`MockServer`]: the listener, the per-connection tasks and their lifecycle.
//!
//! One accept task owns the listener and a `JoinSet` of connection tasks.
//! [`MockServer::kill`] tells it to stop; it then closes the listener and
//! aborts every connection (in-flight requests see their connection drop,
//! like after `kill -9`) before it finishes, so once `kill` returns the port
//! refuses connections. [`MockServer::restart`] binds the same port again with
//! `SO_REUSEADDR` and keeps the configuration and counters, which live in the
//! shared state rather than in the accept task.
//!
//! To answer with raw bytes or a reset in the `Garbage`/`Reset` modes after
//! hyper has let go of a connection, each connection task keeps a duplicate
//! of the socket's file descriptor (a safe `try_clone_to_owned`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, PoisonError};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::handler::{self, Conn};
use crate::state::Shared;
use crate::{FailureMode, Latency, MockConfig, MockStats};

/// What the `Garbage` mode answers instead of HTTP.
const GARBAGE: &[u8] = b"SSH-2.0-garbage\r\n";

/// A running mock inference server. Dropping it stops it.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

/// The accept task of one bound listener.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Binds `addr` (port 0 picks a free port), starts serving in the
    /// background and returns. Must be called within a tokio runtime.
    pub async fn start(addr: SocketAddr, cfg: MockConfig) -> io::Result<MockServer> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg));
        let running = spawn(listener, Arc::clone(&shared));
        Ok(MockServer {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, with `127.0.0.1` when bound to the unspecified address.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    pub fn stats(&self) -> MockStats {
        self.shared.stats()
    }

    /// Zeroes the counters (`in_flight` is live and kept).
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    pub fn set_healthy(&self, ok: bool) {
        self.shared.set_healthy(ok);
    }

    pub fn set_mode(&self, mode: FailureMode) {
        self.shared.set_mode(mode);
    }

    pub fn set_latency(&self, l: Latency) {
        self.shared.set_latency(l);
    }

    /// Sets the injected error probability, clamped to `0..=1`.
    pub fn set_error_rate(&self, r: f64) {
        self.shared.set_error_rate(r);
    }

    /// Adds an ORCA load report (`endpoint-load-metrics: VALUE`, e.g.
    /// `TEXT cpu_utilization=0.9`) to every answer; `None` stops it.
    pub fn set_load_report(&self, value: Option<&str>) {
        let v = value.and_then(|v| hyper::header::HeaderValue::from_str(v).ok());
        *self
            .shared
            .load_report
            .write()
            .unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// Simulates `kill -9`: closes the listener and drops every open
    /// connection at once. Afterwards connections to the port are refused.
    pub async fn kill(&self) {
        let running = self.lock_running().take();
        if let Some(running) = running {
            // The accept task closes the listener and aborts all connections.
            let _ = running.stop.send(());
            let _ = running.task.await;
        }
    }

    /// Binds the same port again and serves with the same configuration and
    /// counters. A running instance is killed first.
    pub async fn restart(&self) -> io::Result<()> {
        self.kill().await;
        let listener = bind(self.addr)?;
        let running = spawn(listener, Arc::clone(&self.shared));
        if let Some(other) = self.lock_running().replace(running) {
            other.task.abort();
        }
        Ok(())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let running = self
            .running
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = running.take() {
            // Dropping the accept task drops its JoinSet, which aborts the connections.
            running.task.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, shared, stopped));
    Running { stop, task }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conns.spawn(serve(stream, Arc::clone(&shared)));
                }
                // Typically EMFILE: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Serves one connection with hyper, then carries out a pending
/// `Reset`/`Garbage` action on the raw socket.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let raw = stream.as_fd().try_clone_to_owned().ok();
    let conn = Arc::new(Conn::new(shared));
    let svc = {
        let conn = Arc::clone(&conn);
        service_fn(move |req| handler::handle(Arc::clone(&conn), req))
    };
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
    let Some(raw) = raw else { return };
    let action = conn.abort_action();
    if action == FailureMode::Normal {
        return;
    }
    let Ok(raw) = TcpStream::from_std(std::net::TcpStream::from(raw)) else {
        return;
    };
    match action {
        FailureMode::Garbage => {
            let mut raw = raw;
            let _ = raw.write_all(GARBAGE).await;
            let _ = raw.shutdown().await;
            // Drain what the peer still sends until it closes, so closing our
            // side with unread data does not reset the garbage away.
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(raw.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
        }
        // An abortive close: the peer sees a TCP RST.
        _ => {
            let _ = raw.set_zero_linger();
        }
    }
}
