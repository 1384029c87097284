//! Opening a connection to an instance: TCP, plus a TLS handshake for
//! `https://` instances; [`Stream`] is the one connection type of the
//! upstream side, and [`DialError`] tells an instance's failure from the
//! gateway running out of descriptors.

use crate::tls::Upstream;
use fulcrum_config::Endpoint;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why a connection to an instance could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialError {
    pub detail: String,
    /// The gateway itself is out of a resource (file descriptors, memory,
    /// local ports): not the instance's fault, so never counted against it.
    pub local: bool,
}

impl DialError {
    fn instance(detail: String) -> Self {
        Self {
            detail,
            local: false,
        }
    }
}

/// Whether a socket error means this process or host ran out of something.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        // Not EADDRNOTAVAIL: it can belong to one instance's address (an
        // IPv6 endpoint on a host without IPv6), which must fail over.
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A connection to an instance, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects to `endpoint`, with a TLS handshake when `tls` is given.
    pub async fn connect(endpoint: &Endpoint, tls: Option<&Upstream>) -> Result<Self, DialError> {
        let addr = endpoint.authority.as_str();
        let tcp = TcpStream::connect(addr).await.map_err(|e| DialError {
            local: is_local_exhaustion(&e),
            detail: if is_local_exhaustion(&e) {
                format!("cannot open a connection to {addr}: {e} (a limit of this gateway, e.g. `ulimit -n`, not the instance's fault)")
            } else {
                format!("connect to {addr}: {e}")
            },
        })?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => {
                let tls = tokio_rustls::TlsConnector::from(t.config.clone())
                    .connect(t.server_name.clone(), tcp)
                    .await
                    .map_err(|e| DialError::instance(format!("TLS handshake with {addr}: {e}")))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
