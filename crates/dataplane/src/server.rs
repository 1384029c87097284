//! The listeners: accept connections (bounded by `limits.max_connections`,
//! or `admin.max_connections` for the admin API), serve HTTP/1.1 with
//! keep-alive and HTTP/2 (h2c prior knowledge) on the same port, time out
//! every peer that holds a connection without using it (see
//! [`watchdog`]), limit the request head's size (`431`), log accept errors
//! at most once a second, and drain on shutdown.
//!
//! [`serve`] is the proxy (with TLS); [`serve_service`] serves any hyper
//! service, the admin API's router, with the same limits.

pub mod watchdog;

use crate::http::body::SendTimeout;
use crate::http::Peer;
use crate::proxy::handle;
use crate::Gateway;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use watchdog::{Answer, Conn, Deadlines, Io, OnWake, Reason};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Settings fixed for the life of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerOptions {
    /// The request head is due this long after the accept (or, on a
    /// kept-alive connection, after the next request's first byte).
    pub client_header: Duration,
    /// An idle connection is closed after this.
    pub keepalive: Duration,
    /// How long an answer may make no progress when it does not say
    /// (the global `timeouts.idle`; the proxy's answers carry their pool's).
    pub send_idle: Duration,
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
        if old.admin.max_connections != new.admin.max_connections {
            v.push("admin.max_connections");
        }
        if old.client_header != new.client_header {
            v.push("timeouts.client_header");
        }
        if old.keepalive != new.keepalive {
            v.push("timeouts.keepalive");
        }
        if old.limits.max_header != new.limits.max_header {
            v.push("limits.max_header");
        }
        if old.limits.max_connections != new.limits.max_connections {
            v.push("limits.max_connections");
        }
        if old.limits.backlog != new.limits.backlog {
            v.push("limits.backlog");
        }
        if old.tls.is_some() != new.tls.is_some() {
            v.push("tls (turning TLS on or off; new certificate files apply at once)");
        }
        if old.admin.token != new.admin.token {
            v.push("admin.token (for the native admin API)");
        }
        if old.shutdown != new.shutdown {
            v.push("shutdown.grace");
        }
        v
    }

    /// `new` with the settings [`Self::fixed_changes`] lists put back as
    /// `running` has them: the config a reload publishes says what runs,
    /// so a change reverted in the file is no change.
    pub fn keep_fixed(running: &fulcrum_config::Config, new: &mut fulcrum_config::Config) {
        new.listen = running.listen;
        new.admin.listen = running.admin.listen;
        new.admin.max_connections = running.admin.max_connections;
        new.admin.token = running.admin.token.clone();
        new.client_header = running.client_header;
        new.keepalive = running.keepalive;
        new.limits.max_header = running.limits.max_header;
        new.limits.max_connections = running.limits.max_connections;
        new.limits.backlog = running.limits.backlog;
        new.shutdown = running.shutdown;
        if running.tls.is_some() != new.tls.is_some() {
            new.tls = running.tls.clone();
        }
    }

    /// The proxy listener's settings.
    pub fn from_config(cfg: &fulcrum_config::Config) -> Self {
        Self {
            client_header: cfg.client_header,
            keepalive: cfg.keepalive,
            send_idle: cfg.default_pool.timeouts.idle,
            max_header: cfg.limits.max_header as usize,
            max_connections: cfg.limits.max_connections as usize,
            grace: Duration::from_secs(30),
            tls: cfg.tls.is_some(),
        }
    }

    /// The admin listener's settings: the proxy's timeouts, its own
    /// connection cap, no TLS.
    pub fn admin(cfg: &fulcrum_config::Config) -> Self {
        Self {
            max_connections: cfg.admin.max_connections as usize,
            tls: false,
            ..Self::from_config(cfg)
        }
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            client_header: self.client_header,
            keepalive: self.keepalive,
            send: self.send_idle,
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The watchdog owns the head and keep-alive deadlines (hyper's own
        // header timer would also run while a kept-alive connection idles).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(self.max_header.max(8192))
            .keep_alive(true)
            .writev(false);
        // Pings find a peer that has gone away while a stream is open.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(self.keepalive))
            .keep_alive_timeout(self.client_header);
        builder
    }
}

/// Binds a listener with a listen backlog of `backlog` (the kernel caps it
/// at `net.core.somaxconn`).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std's `TcpListener::bind`: a restart may bind while old
    // connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves one connection's HTTP/1.1 or HTTP/2, with upgrades, to its end:
/// until the peer closes it, the watchdog gives up on it, or a drain and
/// the requests in flight finish.
async fn connection<I, S, B>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Arc<Conn>,
    io: I,
    svc: S,
    mut drain: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let svc = Arc::new(svc);
    let tracked = {
        let conn = conn.clone();
        service_fn(move |req: Request<Incoming>| {
            let active = conn.start(req.version() == http::Version::HTTP_2);
            // Boxed: the request future is large, and this wrapper would
            // otherwise copy it on every move.
            let answer = Box::pin(svc.call(req));
            async move {
                let resp = answer.await?;
                let limit = resp.extensions().get::<SendTimeout>().copied();
                Ok::<_, S::Error>(resp.map(|b| Answer::new(b, active, limit)))
            }
        })
    };
    let serving = builder.serve_connection_with_upgrades(TokioIo::new(io), tracked);
    tokio::pin!(serving);
    type Timer = OnWake<Pin<Box<dyn Future<Output = Reason> + Send>>>;
    let mut timer: Timer = OnWake::new(Box::pin(watchdog::watch(conn.clone())));
    let mut draining = false;
    // Polled only when the drain signal moves, not on every socket event.
    let mut drained = OnWake::new(Box::pin(async move {
        let _ = drain.wait_for(|d| *d).await;
    }));
    loop {
        tokio::select! {
            biased;
            r = serving.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut drained, if !draining => {
                draining = true;
                serving.as_mut().graceful_shutdown();
            }
            why = &mut timer => {
                if why == Reason::Idle && conn.is_http2() && !draining {
                    // GOAWAY first, so the peer knows no stream was lost;
                    // closed for good if it does not finish in time.
                    draining = true;
                    serving.as_mut().graceful_shutdown();
                    let wait = conn.limits().client_header;
                    timer = OnWake::new(Box::pin(async move {
                        tokio::time::sleep(wait).await;
                        Reason::Idle
                    }));
                    continue;
                }
                tracing::debug!(%peer, reason = ?why, "closing the connection");
                return;
            }
        }
    }
}

/// Accept errors, logged at most once a second with a count of those left
/// out, and a pause before accepting again that doubles while they last
/// (EMFILE: the listener would otherwise spin on the same error).
struct AcceptErrors {
    listener: &'static str,
    logged: Option<Instant>,
    suppressed: u64,
    pause: Duration,
}

impl AcceptErrors {
    const EVERY: Duration = Duration::from_secs(1);
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_millis(250);

    fn new(listener: &'static str) -> Self {
        Self {
            listener,
            logged: None,
            suppressed: 0,
            pause: Duration::ZERO,
        }
    }

    fn accepted(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Logs `e` (or counts it) and returns how long to pause.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        let now = Instant::now();
        if self.logged.is_none_or(|t| now >= t + Self::EVERY) {
            if self.suppressed == 0 {
                tracing::warn!(listener = self.listener, error = %e, "accept failed");
            } else {
                tracing::warn!(
                    listener = self.listener,
                    error = %e,
                    suppressed = self.suppressed,
                    "accept failed (and {} more times since the last report)",
                    self.suppressed
                );
            }
            self.logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.pause = (self.pause * 2).clamp(Self::FIRST_PAUSE, Self::MAX_PAUSE);
        self.pause
    }
}

/// Accepts on `listener` until `shutdown`, at most `opts.max_connections`
/// connections open at once (beyond, connects wait in the backlog), and
/// hands each to `serve` with its permit; then tells every connection to
/// drain and waits up to `opts.grace` for them.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    opts: ListenerOptions,
    shutdown: impl Future<Output = ()>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr, Arc<Conn>, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let max = opts.max_connections.clamp(1, u32::MAX as usize) as u32;
    let limit = Arc::new(Semaphore::new(max as usize));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut errors = AcceptErrors::new(what);
    tokio::pin!(shutdown);
    loop {
        let permit: OwnedSemaphorePermit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    let pause = errors.failed(&e);
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            },
            _ = &mut shutdown => break,
        };
        errors.accepted();
        let _ = stream.set_nodelay(true);
        let conn = Conn::new(Instant::now(), opts.deadlines());
        let task = serve(stream, peer, conn, drain_rx.clone());
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = drain_tx.send(true);
    tokio::select! {
        _ = limit.acquire_many(max) => tracing::info!(listener = what, "all connections drained"),
        _ = tokio::time::sleep(opts.grace) => tracing::warn!(listener = what, "grace period over; closing remaining connections"),
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
    let builder = Arc::new(opts.builder());
    accept_loop(
        listener,
        "proxy",
        opts,
        shutdown,
        move |stream, peer, conn, drain| {
            let (builder, gw) = (builder.clone(), gw.clone());
            async move {
                let io = Io::new(stream, conn.clone());
                if !opts.tls {
                    let svc = proxy(gw, Peer::new(peer));
                    return connection(builder, conn, io, svc, drain, peer).await;
                }
                // TLS: the handshake counts against the head's deadline, with
                // the certificate in force right now (a reload may have
                // replaced it).
                let Some(cfg) = gw.listener_tls() else {
                    tracing::error!("TLS listener without TLS settings; closing the connection");
                    return;
                };
                let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(io);
                let due = Instant::now() + opts.client_header;
                match tokio::time::timeout_at(due, accept).await {
                    Ok(Ok(tls)) => {
                        let svc = proxy(gw, Peer::new(peer).with_tls());
                        connection(builder, conn, tls, svc, drain, peer).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        },
    )
    .await
}

/// The proxy as a service for one caller's connection.
fn proxy(
    gw: Arc<Gateway>,
    caller: Peer,
) -> impl Service<
    Request<Incoming>,
    Response = Response<crate::http::body::ProxyBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<crate::http::body::ProxyBody>, Infallible>>
                 + Send
                 + 'static,
> + Send
       + Sync
       + 'static {
    let caller = Arc::new(caller);
    service_fn(move |req| {
        let (gw, caller) = (gw.clone(), caller.clone());
        async move { Ok::<_, Infallible>(handle(gw, req, &caller).await) }
    })
}

/// Serves `svc` (the admin API) on `listener` with the listener limits of
/// `opts`, until `shutdown`; `what` names the listener in the log.
pub async fn serve_service<S, B>(
    listener: TcpListener,
    svc: S,
    what: &'static str,
    opts: ListenerOptions,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = Arc::new(opts.builder());
    accept_loop(
        listener,
        what,
        opts,
        shutdown,
        move |stream, peer, conn, drain| {
            let io = Io::new(stream, conn.clone());
            connection(builder.clone(), conn, io, svc.clone(), drain, peer)
        },
    )
    .await
}

/// The deadlines on paused time, over in-memory pipes (no kernel buffers,
/// so every wake-up is exact).
#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body::Frame;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const HEAD: Duration = Duration::from_secs(10);
    const KEEPALIVE: Duration = Duration::from_secs(60);
    const SEND: Duration = Duration::from_secs(5);

    fn opts() -> ListenerOptions {
        ListenerOptions {
            client_header: HEAD,
            keepalive: KEEPALIVE,
            send_idle: SEND,
            max_header: 32 << 10,
            max_connections: 10,
            grace: Duration::from_secs(1),
            tls: false,
        }
    }

    /// An answer's body: `hello`, or frames of 16 KiB for ever, or nothing
    /// for ever (a silent source); `dropped` is set when hyper lets it go.
    #[derive(Clone, Copy)]
    enum Kind {
        Hello,
        Endless,
        Silent,
        /// 16 KiB every 10 ms, from another task.
        Trickle,
    }

    struct TestBody {
        kind: Kind,
        sent: bool,
        dropped: Arc<AtomicBool>,
        rx: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    }

    impl Drop for TestBody {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl http_body::Body for TestBody {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.kind {
                Kind::Hello if self.sent => Poll::Ready(None),
                Kind::Hello => {
                    self.sent = true;
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"hello")))))
                }
                Kind::Endless => {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 16 << 10])))))
                }
                Kind::Silent => Poll::Pending,
                Kind::Trickle => {
                    let rx = self.rx.get_or_insert_with(|| {
                        let (tx, rx) = tokio::sync::mpsc::channel(1);
                        tokio::spawn(async move {
                            loop {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                if tx.send(Bytes::from(vec![b'x'; 16 << 10])).await.is_err() {
                                    return;
                                }
                            }
                        });
                        rx
                    });
                    rx.poll_recv(_cx).map(|b| b.map(|b| Ok(Frame::data(b))))
                }
            }
        }
        fn is_end_stream(&self) -> bool {
            matches!(self.kind, Kind::Hello) && self.sent
        }
        fn size_hint(&self) -> http_body::SizeHint {
            match self.kind {
                Kind::Hello if !self.sent => http_body::SizeHint::with_exact(5),
                Kind::Hello => http_body::SizeHint::with_exact(0),
                _ => http_body::SizeHint::default(),
            }
        }
    }

    /// A connection served over an in-memory pipe; the caller's end, and
    /// whether the last answer's body was dropped.
    fn serve_pipe(kind: Kind, send: Option<Duration>) -> (DuplexStream, Arc<AtomicBool>) {
        let (caller, ours) = tokio::io::duplex(64 << 10);
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let svc = service_fn(move |_req: Request<Incoming>| {
            let body = TestBody {
                kind,
                sent: false,
                dropped: d.clone(),
                rx: None,
            };
            let mut resp = Response::new(body);
            if let Some(t) = send {
                resp.extensions_mut().insert(SendTimeout(t));
            }
            async move { Ok::<_, Infallible>(resp) }
        });
        let o = opts();
        let conn = Conn::new(Instant::now(), o.deadlines());
        let (_tx, rx) = watch::channel(false);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        tokio::spawn(async move {
            let _tx = _tx;
            connection(
                Arc::new(o.builder()),
                conn.clone(),
                Io::new(ours, conn),
                svc,
                rx,
                peer,
            )
            .await
        });
        (caller, dropped)
    }

    /// Reads until the gateway closes; how long it took.
    async fn closed(s: &mut DuplexStream) -> Duration {
        let t = Instant::now();
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(3600), s.read_to_end(&mut sink))
            .await
            .expect("still open after an hour")
            .unwrap();
        t.elapsed()
    }

    /// Reads one answer of `hello`.
    async fn answer(s: &mut DuplexStream) {
        let mut buf = Vec::new();
        while !buf.ends_with(b"hello") {
            let mut b = [0u8; 256];
            let n = s.read(&mut b).await.unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&b[..n]);
        }
        assert!(buf.starts_with(b"HTTP/1.1 200"));
    }

    fn about(got: Duration, want: Duration) {
        let slack = Duration::from_millis(2);
        assert!(
            got + slack >= want && got <= want + slack,
            "took {got:?}, expected {want:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_sends_nothing_is_closed_when_the_head_is_due() {
        let (mut s, _) = serve_pipe(Kind::Hello, None);
        about(closed(&mut s).await, HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_head_is_due_from_the_accept() {
        let (mut s, _) = serve_pipe(Kind::Hello, None);
        tokio::time::sleep(Duration::from_secs(4)).await;
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        about(closed(&mut s).await, HEAD - Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_keepalive_and_a_next_head_is_due_after_its_first_byte(
    ) {
        let (mut s, _) = serve_pipe(Kind::Hello, None);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        answer(&mut s).await;
        about(closed(&mut s).await, KEEPALIVE);

        let (mut s, _) = serve_pipe(Kind::Hello, None);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        answer(&mut s).await;
        // A second request, started after 50 s (more than the head's 10 s):
        // served, and then idle again for a whole keep-alive period.
        tokio::time::sleep(Duration::from_secs(50)).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        answer(&mut s).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        // A third, half sent: due 10 s after its first byte.
        s.write_all(b"GET / HT").await.unwrap();
        about(closed(&mut s).await, HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_stops_reading_is_closed_and_the_answer_dropped() {
        for (send, want) in [
            (None, SEND),
            (Some(Duration::from_secs(2)), Duration::from_secs(2)),
        ] {
            let (mut s, dropped) = serve_pipe(Kind::Endless, send);
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .unwrap();
            // The pipe fills at once (no time passes); nothing is read.
            let t = Instant::now();
            while !dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            about(t.elapsed(), want);
            // What was buffered can still be read, then the end.
            closed(&mut s).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_stops_reading_a_trickling_answer_is_closed_too() {
        // The source makes the answer wait before each frame; once the pipe
        // is full hyper stops asking, and the frames that come meanwhile
        // are not the caller's progress.
        let (mut s, dropped) = serve_pipe(Kind::Trickle, None);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let t = Instant::now();
        while !dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert!(t.elapsed() < Duration::from_secs(60), "never closed");
        }
        // The pipe (64 KiB) and hyper's buffer fill within ~100 ms.
        let took = t.elapsed();
        assert!(
            took >= SEND && took <= SEND + Duration::from_millis(200),
            "{took:?}"
        );
        closed(&mut s).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (mut s, dropped) = serve_pipe(Kind::Endless, None);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        // 1 KiB every 3 s: never 5 s without progress, though one 16 KiB
        // frame takes 48 s to go out.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            s.read_exact(&mut buf).await.unwrap();
        }
        assert!(!dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_waiting_on_its_source_is_left_to_its_own_timer() {
        let (mut s, dropped) = serve_pipe(Kind::Silent, None);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let r = tokio::time::timeout(Duration::from_secs(600), async {
            loop {
                if s.read(&mut buf).await.unwrap() == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(r.is_err(), "closed while the answer's source was silent");
        assert!(!dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_http2_connection_is_closed_after_keepalive() {
        let (caller, _) = serve_pipe(Kind::Hello, None);
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(caller))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let resp = send
            .send_request(
                Request::get("http://t/")
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        use http_body_util::BodyExt;
        assert_eq!(
            &resp.into_body().collect().await.unwrap().to_bytes()[..],
            b"hello"
        );
        let t = Instant::now();
        conn.await.unwrap().unwrap();
        let took = t.elapsed();
        assert!(
            took >= KEEPALIVE && took <= KEEPALIVE + HEAD,
            "closed after {took:?}"
        );
    }
}
