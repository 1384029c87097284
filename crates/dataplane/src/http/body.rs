//! Body types of the proxy: one boxed body type both ways, the wrapper
//! that enforces the idle timeout and tells a [`Completion`] how the body
//! ended (tower's `TrackCompletion`: the request's bookkeeping rides in
//! the body instead of in the request loop), and the bounded read-ahead
//! that makes a small body replayable.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type the proxy sends and answers with.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub fn full(b: impl Into<Bytes>) -> ProxyBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?} on the stream (idle timeout)")]
pub struct IdleTimeout(pub Duration);

/// How long the caller may take nothing of an answer before its
/// connection is closed (the pool's `timeouts.idle`). Set on a response's
/// extensions by the proxy; the listener's watchdog reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTimeout(pub Duration);

#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

pin_project_lite::pin_project! {
    /// A body that must end within a fixed time of its creation, or fails
    /// with [`BodyTimeout`] (the admin listener's request bodies).
    pub struct Deadline<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Sleep,
        limit: Duration,
    }
}

impl<B> Deadline<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            sleep: tokio::time::sleep(limit),
            limit,
        }
    }
}

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(f) = this.inner.poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        ready!(this.sleep.poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimeout(*this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How a [`Tracked`] body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end without an error.
    Complete,
    /// The inner body failed, or stalled for longer than the idle timeout.
    Failed,
    /// Dropped before its end (the reader went away).
    Dropped,
}

/// Told once how a [`Tracked`] body ended, and how many bytes of data
/// passed through it.
pub trait Completion {
    fn complete(self, end: BodyEnd, bytes: u64);
}

/// Nothing to report (a request body, which only needs the idle timeout).
impl Completion for () {
    fn complete(self, _end: BodyEnd, _bytes: u64) {}
}

pin_project_lite::pin_project! {
    /// Passes a body through, reporting to `done` once: when the body
    /// ends, fails, stalls for `idle` without a frame (then failing it),
    /// or is dropped.
    pub struct Tracked<B, C>
    where
        B: Body,
        C: Completion,
    {
        #[pin]
        inner: B,
        done: Option<C>,
        idle: Duration,
        // Data bytes passed through so far (the access log's bytes out).
        bytes: u64,
        // Created lazily the first time the inner body is not ready, so a
        // small response that arrives in one piece never arms a timer.
        timer: Option<Pin<Box<Sleep>>>,
    }

    impl<B, C> PinnedDrop for Tracked<B, C>
    where
        B: Body,
        C: Completion,
    {
        fn drop(this: Pin<&mut Self>) {
            // Dropped unread: clean only if nothing was left to read (hyper
            // does not poll a body that says it has ended).
            let this = this.project();
            let end = if this.inner.is_end_stream() {
                BodyEnd::Complete
            } else {
                BodyEnd::Dropped
            };
            finish(this.done, end, *this.bytes);
        }
    }
}

impl<B: Body, C: Completion> Tracked<B, C> {
    pub fn new(inner: B, done: C, idle: Duration) -> Self {
        Self {
            inner,
            done: Some(done),
            idle,
            bytes: 0,
            timer: None,
        }
    }
}

/// Reports to the completion handle at most once.
fn finish<C: Completion>(done: &mut Option<C>, end: BodyEnd, bytes: u64) {
    if let Some(d) = done.take() {
        d.complete(end, bytes);
    }
}

impl<B, C> Body for Tracked<B, C>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    C: Completion,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(None) => {
                finish(this.done, BodyEnd::Complete, *this.bytes);
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => {
                if let Some(t) = this.timer.as_mut() {
                    t.as_mut().reset(tokio::time::Instant::now() + *this.idle);
                }
                if let Some(d) = r.as_ref().ok().and_then(Frame::data_ref) {
                    *this.bytes += d.len() as u64;
                }
                if r.is_err() {
                    finish(this.done, BodyEnd::Failed, *this.bytes);
                } else if this.inner.is_end_stream() {
                    // The last frame: hyper's server will not poll again
                    // (it checks `is_end_stream`), so finish here.
                    finish(this.done, BodyEnd::Complete, *this.bytes);
                }
                Poll::Ready(Some(r.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = *this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(timer.as_mut().poll(cx));
                finish(this.done, BodyEnd::Failed, *this.bytes);
                Poll::Ready(Some(Err(Box::new(IdleTimeout(idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// Counts the data bytes of a body as they pass, into a counter shared
    /// with whoever reports them (a streamed request body's bytes in, read
    /// when the request's record is finished).
    pub struct Counted<B> {
        #[pin]
        inner: B,
        n: Arc<AtomicU64>,
    }
}

impl<B> Counted<B> {
    /// `inner`, counted into the returned counter.
    pub fn new(inner: B) -> (Self, Arc<AtomicU64>) {
        let n = Arc::new(AtomicU64::new(0));
        (
            Self {
                inner,
                n: n.clone(),
            },
            n,
        )
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let r = ready!(this.inner.poll_frame(cx));
        if let Some(d) = r
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .and_then(Frame::data_ref)
        {
            this.n.fetch_add(d.len() as u64, Relaxed);
        }
        Poll::Ready(r.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A body whose first bytes were already read into memory (the replay
    /// buffer overflowed), followed by the rest of the original stream.
    pub struct Prefixed<B> {
        prefix: Option<Bytes>,
        #[pin]
        rest: B,
    }
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(p) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        this.rest
            .poll_frame(cx)
            .map(|o| o.map(|r| r.map_err(Into::into)))
    }
}

/// The request body after the replay decision.
pub enum Buffered {
    /// Fully in memory: can be sent any number of times.
    Replayable(Bytes),
    /// Too large to keep: sent once, as a stream.
    Streaming(ProxyBody),
}

/// Reads `body` into memory up to `limit` bytes. If it ends within the
/// limit it becomes replayable; otherwise what was read is put back in
/// front of the rest and the whole streams once.
pub async fn buffer_for_replay<B>(mut body: B, limit: usize) -> Result<Buffered, BoxError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(Buffered::Replayable(buf.freeze())),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
                // Trailers on a request are dropped: inference APIs do not use them.
                if buf.len() > limit {
                    let rest = Prefixed {
                        prefix: Some(buf.freeze()),
                        rest: body,
                    };
                    return Ok(Buffered::Streaming(rest.boxed_unsync()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunks(parts: &[&'static str]) -> impl Body<Data = Bytes, Error = BoxError> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_stream(frames))
    }

    fn futures_stream(
        v: Vec<Result<Frame<Bytes>, BoxError>>,
    ) -> impl tokio_stream_shim::Stream<Item = Result<Frame<Bytes>, BoxError>> + Unpin {
        tokio_stream_shim::Iter(v.into_iter())
    }

    mod tokio_stream_shim {
        pub use futures_core::Stream;
        pub struct Iter<I>(pub I);
        impl<I: Iterator + Unpin> Stream for Iter<I> {
            type Item = I::Item;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<I::Item>> {
                std::task::Poll::Ready(self.0.next())
            }
        }
    }

    #[tokio::test]
    async fn small_bodies_become_replayable() {
        match buffer_for_replay(chunks(&["ab", "cd"]), 10).await.unwrap() {
            Buffered::Replayable(b) => assert_eq!(&b[..], b"abcd"),
            Buffered::Streaming(_) => panic!("should fit"),
        }
    }

    #[tokio::test]
    async fn large_bodies_stream_whole_with_nothing_lost() {
        match buffer_for_replay(chunks(&["abc", "def", "ghi"]), 4)
            .await
            .unwrap()
        {
            Buffered::Streaming(b) => {
                let all = b.collect().await.unwrap().to_bytes();
                assert_eq!(&all[..], b"abcdefghi");
            }
            Buffered::Replayable(_) => panic!("should overflow"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_fails_after_the_idle_timeout() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let silent = http_body_util::StreamBody::new(ReceiverStream(rx));
        let mut t = Tracked::new(silent, (), Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let err = t.frame().await.unwrap().unwrap_err();
        assert!(err.is::<IdleTimeout>());
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    /// Records how the body ended.
    #[derive(Clone, Default)]
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<(BodyEnd, u64)>>>);
    impl Completion for Seen {
        fn complete(self, end: BodyEnd, bytes: u64) {
            self.0.lock().unwrap().push((end, bytes));
        }
    }

    #[tokio::test]
    async fn completion_is_told_once_how_the_body_ended() {
        let seen = Seen::default();
        let t = Tracked::new(chunks(&["a", "b"]), seen.clone(), Duration::from_secs(5));
        assert_eq!(&t.collect().await.unwrap().to_bytes()[..], b"ab");
        assert_eq!(*seen.0.lock().unwrap(), vec![(BodyEnd::Complete, 2)]);

        let seen = Seen::default();
        let mut t = Tracked::new(chunks(&["a", "b"]), seen.clone(), Duration::from_secs(5));
        t.frame().await.unwrap().unwrap();
        drop(t);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![(BodyEnd::Dropped, 1)],
            "the bytes that went out before the reader left"
        );

        let seen = Seen::default();
        let t = Tracked::new(
            http_body_util::Empty::<Bytes>::new(),
            seen.clone(),
            Duration::from_secs(5),
        );
        drop(t);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![(BodyEnd::Complete, 0)],
            "an empty body dropped unread has ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_completes_as_failed() {
        let seen = Seen::default();
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let silent = http_body_util::StreamBody::new(ReceiverStream(rx));
        let mut t = Tracked::new(silent, seen.clone(), Duration::from_secs(5));
        assert!(t.frame().await.unwrap().is_err());
        drop(t);
        assert_eq!(*seen.0.lock().unwrap(), vec![(BodyEnd::Failed, 0)]);
    }

    #[tokio::test]
    async fn counted_bodies_count_their_data_bytes() {
        let (b, n) = Counted::new(chunks(&["abc", "de"]));
        assert_eq!(&b.collect().await.unwrap().to_bytes()[..], b"abcde");
        assert_eq!(n.load(Relaxed), 5);
    }

    struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);
    impl<T> tokio_stream_shim::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}
