//! A response body passed through to the caller while a copy is kept;
//! the copy is handed to a [`Keep`] only when the body ended complete,
//! without trailers, within the size limit.

use crate::http::body::{BoxError, ProxyBody};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Takes the complete body (once).
pub trait Keep {
    fn keep(self, body: Bytes);
}

/// Passes a response body through, keeping a copy; stores it when the body
/// ends complete and within the size limit.
pub struct Tee<K> {
    inner: ProxyBody,
    buf: Option<BytesMut>,
    limit: usize,
    pending: Option<K>,
}

impl<K: Keep> Tee<K> {
    pub fn new(inner: ProxyBody, limit: usize, keep: K) -> Self {
        Self {
            inner,
            buf: Some(BytesMut::new()),
            limit,
            pending: Some(keep),
        }
    }

    /// The body ended complete: store it (once).
    fn finish(&mut self) {
        if let (Some(buf), Some(keep)) = (self.buf.take(), self.pending.take()) {
            keep.keep(buf.freeze());
        }
    }
}

impl<K: Keep + Unpin> Body for Tee<K> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_frame(cx);
        match &res {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    // Not kept with the body: such an answer is not stored.
                    this.buf = None;
                    this.pending = None;
                }
                if let Some(data) = frame.data_ref() {
                    let over = this
                        .buf
                        .as_ref()
                        .is_some_and(|b| b.len() + data.len() > this.limit);
                    if over {
                        this.buf = None;
                        this.pending = None;
                    } else if let Some(b) = &mut this.buf {
                        b.extend_from_slice(data);
                    }
                }
                // With a Content-Length, the server may stop polling as soon
                // as that many bytes went out: complete now.
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                // Incomplete: never stored.
                this.buf = None;
                this.pending = None;
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        // Only after poll_frame saw the end, so the entry is stored.
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
