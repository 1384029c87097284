//! The compressing body: each piece of the answer is fed to the encoder
//! as it arrives, and whatever was fed is flushed (a gzip sync flush, a
//! zstd block end) the moment the answer has nothing more ready. A
//! server-sent event thus reaches the caller as soon as the instance sent
//! it, decodable on its own, while pieces that arrive together share one
//! flush. (tower-http's `CompressionLayer` flushes only when its buffer
//! fills, which holds SSE back — its issue #420 — so it leaves
//! `text/event-stream` alone; flushing on idle is nginx's behaviour with
//! `proxy_buffering off`.)
//!
//! Memory stays bounded: the encoder's state, plus the output of at most
//! [`MAX_INPUT_PER_FRAME`] bytes of input (and of one frame of the inner
//! body) before it is handed on. Trailers follow the compressed data; an
//! error of the inner body ends the stream with that error.

use crate::http::body::BoxError;
use bytes::Bytes;
use fulcrum_config::ContentCoding;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Input read ahead, while the inner body has more ready, before a frame
/// is handed on (a fast body cannot make one poll compress it all).
pub const MAX_INPUT_PER_FRAME: usize = 64 << 10;

/// gzip level 1, nginx's `gzip_comp_level` default: most of the saving on
/// JSON and text for the least CPU on the request path.
const GZIP_LEVEL: u32 = 1;
/// zstd's own default level: smaller than gzip level 6, faster than level 1.
const ZSTD_LEVEL: i32 = 3;
/// 2^19 = 512 KiB of history (zstd's default at level 3 is 2 MiB for a
/// stream of unknown length): bounds the memory of every open compressed
/// stream (SSE) at little cost in ratio for inference answers.
const ZSTD_WINDOW_LOG: u32 = 19;

/// One encoder writing into a growing buffer, taken from after each flush.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// `len`: the body's exact length, when known. zstd then sizes its
    /// window and tables to it, which makes a small answer's encoder much
    /// cheaper to set up (and says the length in the frame header).
    fn new(coding: ContentCoding, len: Option<u64>) -> std::io::Result<Self> {
        Ok(match coding {
            ContentCoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            ContentCoding::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
                e.window_log(ZSTD_WINDOW_LOG)?;
                e.set_pledged_src_size(len)?;
                Encoder::Zstd(e)
            }
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    /// Makes everything written so far decodable from the output.
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }

    /// The output produced so far (the encoders only ever append to it).
    fn take(&mut self) -> Bytes {
        let out = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        Bytes::from(std::mem::take(out))
    }

    /// The rest of the output, the coding's end included.
    fn finish(self) -> std::io::Result<Bytes> {
        Ok(Bytes::from(match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Zstd(e) => e.finish()?,
        }))
    }
}

/// A body compressed as it streams.
pub struct Compressed<B> {
    inner: B,
    /// `None` once the coding has ended (or failed).
    enc: Option<Encoder>,
    /// The inner body's trailers, sent after the coding's end.
    trailers: Option<HeaderMap>,
}

impl<B> Compressed<B> {
    /// `inner`, compressed with `coding`; `inner` back if the encoder
    /// cannot be made. A body whose size hint is exact must have that
    /// length (else its end is an error).
    pub fn new(inner: B, coding: ContentCoding) -> Result<Self, B>
    where
        B: Body,
    {
        match Encoder::new(coding, inner.size_hint().exact()) {
            Ok(enc) => Ok(Self {
                inner,
                enc: Some(enc),
                trailers: None,
            }),
            Err(_) => Err(inner),
        }
    }
}

type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

fn data(out: Bytes) -> Polled {
    Poll::Ready(Some(Ok(Frame::data(out))))
}

impl<B> Compressed<B> {
    /// The inner body has ended: the coding's end, then any trailers.
    fn finish(&mut self) -> Polled {
        let out = match self.enc.take().map(Encoder::finish) {
            Some(Ok(out)) => out,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => Bytes::new(),
        };
        if !out.is_empty() {
            return data(out);
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

impl<B> Body for Compressed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        let Some(enc) = this.enc.as_mut() else {
            return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
        };
        // Input fed since the last flush.
        let mut fed = 0;
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(d) => {
                        if let Err(e) = enc.write(&d) {
                            this.enc = None;
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        fed += d.len();
                        if this.inner.is_end_stream() {
                            return this.finish();
                        }
                        if fed >= MAX_INPUT_PER_FRAME {
                            return flushed(this);
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        return this.finish();
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    this.enc = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => return this.finish(),
                // Nothing more ready: what was fed goes out now.
                Poll::Pending if fed > 0 => return flushed(this),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.enc.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Flushes the encoder and hands on what it produced.
fn flushed<B>(this: &mut Compressed<B>) -> Polled {
    let Some(enc) = this.enc.as_mut() else {
        return Poll::Ready(None);
    };
    if let Err(e) = enc.flush() {
        this.enc = None;
        return Poll::Ready(Some(Err(e.into())));
    }
    data(enc.take())
}
