//! One connection's deadlines, nginx's model:
//!
//! * the first request head is due `client_header` after the accept (the
//!   TLS handshake and HTTP/2's preface included), so a peer that never
//!   sends a byte is closed too;
//! * an idle connection (HTTP/1.1 between requests, HTTP/2 without an open
//!   stream) is closed after `keepalive`; on HTTP/1.1 the next request's
//!   head is due `client_header` after its first byte;
//! * an answer the caller stops taking (its body not asked for a frame, and
//!   on HTTP/1.1 no byte written either, for the idle timeout) closes the
//!   connection; the body is dropped with it, which frees the instance slot
//!   and the instance connection. hyper does not poll a body while the
//!   socket takes nothing, so the body's own idle timer ([`Tracked`]) cannot
//!   see this.
//!
//! Three pieces share one [`Conn`]: [`Io`] wraps the socket and notes
//! reads and writes, [`Answer`] wraps each response body and notes when it
//! last handed out a frame, and [`watch`] sleeps until the nearest deadline
//! and returns why the connection must close. The hot path only stores
//! atomics; the watchdog wakes at a deadline (or when a request starts or
//! ends) and recomputes.
//!
//! [`Tracked`]: crate::http::body::Tracked

use crate::http::body::SendTimeout;
use atomic_waker::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// No time stored.
const NONE: u64 = u64::MAX;

/// The deadlines of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub client_header: Duration,
    pub keepalive: Duration,
    /// How long an answer may make no progress when it carries no
    /// [`SendTimeout`] of its own (the global `timeouts.idle`).
    pub send: Duration,
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No complete request head within `client_header`.
    Head,
    /// Idle for `keepalive`.
    Idle,
    /// An answer made no progress for its idle timeout.
    Stalled,
}

/// The state one connection's socket, answers and watchdog share.
#[derive(Debug)]
pub struct Conn {
    /// The accept; every stamp is in milliseconds since.
    base: Instant,
    limits: Deadlines,
    /// Requests whose answer has not ended (head read, body not dropped).
    active: AtomicUsize,
    /// Whether a request has been read (before that, the first head is due).
    started: AtomicBool,
    http2: AtomicBool,
    /// When `active` last fell to 0.
    idle_since: AtomicU64,
    /// The first byte read since the connection went idle (HTTP/1.1).
    first_byte: AtomicU64,
    /// The last write that took bytes.
    last_write: AtomicU64,
    /// The answers being sent.
    answers: Mutex<Vec<Arc<Stamp>>>,
    /// When the watchdog wakes next (ms since `base`; [`NONE`] while it
    /// waits for a notification only, [`RECOMPUTING`] while it looks).
    /// Only a change that brings a deadline before it wakes the watchdog:
    /// a request's start and end, and every frame, cost no task wake-up;
    /// a deadline that moved later is found when the watchdog wakes.
    armed: AtomicU64,
    wake: Notify,
}

/// The watchdog is computing its next deadline: notify it of any change.
const RECOMPUTING: u64 = 0;

/// When an answer last made progress ([`NONE`] while it waits on its own
/// source, which its own timer covers), and its idle timeout.
#[derive(Debug)]
struct Stamp {
    ready_at: AtomicU64,
    limit: Duration,
}

/// The waker an answer's source gets: when the source wakes a waiting
/// answer, the answer has something to send from then on, polled or not
/// (hyper does not poll it while its write buffer is full).
struct SourceWaker {
    stamp: Arc<Stamp>,
    conn: Arc<Conn>,
    task: AtomicWaker,
}

impl std::task::Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.stamp.ready_at.load(Relaxed) == NONE {
            let now = self.conn.now();
            self.stamp.ready_at.store(now, SeqCst);
            self.conn
                .nudge(now.saturating_add(Conn::ms(self.stamp.limit)));
        }
        self.task.wake();
    }
}

/// Polls a future only when its own waker fired (and on the first poll).
/// The connection task wakes for every read and write of its socket; the
/// watchdog beside it needs a look only when its timer or a nudge fires.
pub struct OnWake<F> {
    inner: F,
    flag: Arc<Flag>,
    waker: std::task::Waker,
}

struct Flag {
    woken: AtomicBool,
    parent: AtomicWaker,
}

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.parent.wake();
    }
}

impl<F> OnWake<F> {
    pub fn new(inner: F) -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            parent: AtomicWaker::new(),
        });
        let waker = std::task::Waker::from(flag.clone());
        Self { inner, flag, waker }
    }
}

impl<F: Future + Unpin> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.flag.parent.register(cx.waker());
        if !self.flag.woken.swap(false, SeqCst) {
            return Poll::Pending;
        }
        let this = &mut *self;
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

impl Conn {
    /// A connection accepted at `accepted`.
    pub fn new(accepted: Instant, limits: Deadlines) -> Arc<Self> {
        Arc::new(Self {
            base: accepted,
            limits,
            active: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NONE),
            last_write: AtomicU64::new(0),
            answers: Mutex::new(Vec::new()),
            armed: AtomicU64::new(RECOMPUTING),
            wake: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.base)
            .as_millis()
            .min(u128::from(NONE - 1)) as u64
    }

    /// A deadline `at` (ms since `base`) appeared: wakes the watchdog if
    /// it would otherwise sleep past it.
    fn nudge(&self, at: u64) {
        let armed = self.armed.load(SeqCst);
        if armed == RECOMPUTING || at < armed {
            self.wake.notify_one();
        }
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis().min(u128::from(NONE - 1)) as u64
    }

    fn at(&self, ms: u64, plus: Duration) -> Instant {
        self.base + Duration::from_millis(ms) + plus
    }

    pub fn limits(&self) -> Deadlines {
        self.limits
    }

    pub fn is_http2(&self) -> bool {
        self.http2.load(Relaxed)
    }

    /// A request head was read: the guard ends the request when dropped
    /// (with its answer's body, or with the service future if it never
    /// answered).
    pub fn start(self: &Arc<Self>, http2: bool) -> Active {
        self.started.store(true, Relaxed);
        if http2 {
            self.http2.store(true, Relaxed);
        }
        // The deadline in force (the head's or the idle connection's) is
        // now void; the watchdog finds that when it wakes at it.
        self.active.fetch_add(1, SeqCst);
        Active(self.clone())
    }

    fn end(&self) {
        if self.active.fetch_sub(1, SeqCst) == 1 {
            let now = self.now();
            self.idle_since.store(now, SeqCst);
            self.first_byte.store(NONE, SeqCst);
            self.nudge(now.saturating_add(Self::ms(self.limits.keepalive)));
        }
    }

    fn read(&self) {
        if self.active.load(Relaxed) == 0 && self.first_byte.load(Relaxed) == NONE {
            // The head is now due sooner than the idle connection's end.
            let now = self.now();
            self.first_byte.store(now, SeqCst);
            self.nudge(now.saturating_add(Self::ms(self.limits.client_header)));
        }
    }

    fn wrote(&self) {
        self.last_write.store(self.now(), Relaxed);
    }

    /// The nearest deadline and what passing it means; `None` while a
    /// request waits for its answer.
    fn deadline(&self) -> Option<(Instant, Reason)> {
        let l = &self.limits;
        if self.active.load(Relaxed) == 0 {
            if !self.started.load(Relaxed) {
                return Some((self.base + l.client_header, Reason::Head));
            }
            let idle = self.idle_since.load(Relaxed);
            if self.is_http2() {
                return Some((self.at(idle, l.keepalive), Reason::Idle));
            }
            let first = self.first_byte.load(Relaxed);
            if first != NONE {
                return Some((self.at(first, l.client_header), Reason::Head));
            }
            // A long last answer may still be on its way out.
            let since = idle.max(self.last_write.load(Relaxed));
            return Some((self.at(since, l.keepalive), Reason::Idle));
        }
        let h1_write = if self.is_http2() {
            0
        } else {
            self.last_write.load(Relaxed)
        };
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        answers
            .iter()
            .filter_map(|s| {
                let ready = s.ready_at.load(Relaxed);
                (ready != NONE).then(|| self.at(ready.max(h1_write), s.limit))
            })
            .min()
            .map(|at| (at, Reason::Stalled))
    }
}

/// One request in progress (see [`Conn::start`]).
#[derive(Debug)]
pub struct Active(Arc<Conn>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Resolves when the connection must be closed, and why.
pub async fn watch(conn: Arc<Conn>) -> Reason {
    loop {
        let notified = conn.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Changes from here on notify (see `nudge`); those before are seen.
        conn.armed.store(RECOMPUTING, SeqCst);
        let next = conn.deadline();
        let armed = next.map_or(NONE, |(at, _)| {
            Conn::ms(at.saturating_duration_since(conn.base)).max(RECOMPUTING + 1)
        });
        conn.armed.store(armed, SeqCst);
        match next {
            Some((at, why)) if at <= Instant::now() => return why,
            Some((at, _)) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}

pin_project_lite::pin_project! {
    /// The socket, noting reads and writes in its [`Conn`].
    pub struct Io<T> {
        #[pin]
        inner: T,
        conn: Arc<Conn>,
    }
}

impl<T> Io<T> {
    pub fn new(inner: T, conn: Arc<Conn>) -> Self {
        Self { inner, conn }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead> AsyncRead for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.inner.poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.read();
        }
        r
    }
}

impl<T: AsyncWrite> AsyncWrite for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.wrote();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// An answer's body on its way to the caller, noting when it last
    /// handed out a frame; it ends its request when dropped.
    pub struct Answer<B> {
        #[pin]
        inner: B,
        stamp: Arc<Stamp>,
        conn: Arc<Conn>,
        active: Option<Active>,
        source: Arc<SourceWaker>,
        // `source` as a waker, made once.
        waker: std::task::Waker,
        // The last poll found the source with nothing to give.
        waiting: bool,
        http2: bool,
    }

    impl<B> PinnedDrop for Answer<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut answers = this.conn.answers.lock().unwrap_or_else(|p| p.into_inner());
            answers.retain(|s| !Arc::ptr_eq(s, this.stamp));
            drop(answers);
            this.active.take();
        }
    }
}

impl<B> Answer<B> {
    /// Wraps the body of an answer to `active`'s request; `limit` comes from
    /// the answer's [`SendTimeout`], if any.
    pub fn new(inner: B, active: Active, limit: Option<SendTimeout>) -> Self {
        let conn = active.0.clone();
        let stamp = Arc::new(Stamp {
            // Ready to be taken from now on.
            ready_at: AtomicU64::new(conn.now()),
            limit: limit.map_or(conn.limits.send, |t| t.0),
        });
        conn.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stamp.clone());
        conn.nudge(
            stamp
                .ready_at
                .load(Relaxed)
                .saturating_add(Conn::ms(stamp.limit)),
        );
        let http2 = conn.is_http2();
        let source = Arc::new(SourceWaker {
            stamp: stamp.clone(),
            conn: conn.clone(),
            task: AtomicWaker::new(),
        });
        let waker = std::task::Waker::from(source.clone());
        Self {
            inner,
            stamp,
            conn,
            active: Some(active),
            source,
            waker,
            waiting: false,
            http2,
        }
    }
}

impl<B: Body> Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        this.source.task.register(cx.waker());
        let r = this.inner.poll_frame(&mut Context::from_waker(this.waker));
        // Progress is a frame taken after the source made the answer wait
        // (or, on HTTP/2, any frame taken: the stream asks for one only when
        // the caller has made room for it); a source that has nothing is
        // not the caller's doing ([`NONE`]) until it wakes the answer.
        // HTTP/1.1's other progress is a write: hyper may take one more
        // frame of a ready source whenever its task wakes, written or not.
        if r.is_pending() {
            if !*this.waiting {
                *this.waiting = true;
                this.stamp.ready_at.store(NONE, Relaxed);
            }
        } else if *this.waiting || *this.http2 {
            *this.waiting = false;
            this.stamp.ready_at.store(this.conn.now(), Relaxed);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
