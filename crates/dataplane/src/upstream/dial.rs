//! Opening a connection to an instance: TCP, plus a TLS handshake for
//! `https://` instances; [`Stream`] is the one connection type of the
//! upstream side, and [`DialError`] tells an instance's failure from the
//! gateway running out of descriptors.

use crate::tls::Upstream;
use fulcrum_config::Endpoint;
use std::io;
use std::net::{IpAddr, SocketAddr};
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

/// Whether `target` is one of the gateway's own listeners `own`
/// (`Config::own_addrs`): the same port, and the same address, any
/// loopback or unspecified address, or — for a listener on every address
/// (`0.0.0.0`, `[::]`) — any address of this host. An instance there would
/// let callers of the proxy reach the admin API, or loop requests.
pub fn is_own_listener(own: &[SocketAddr], target: SocketAddr) -> bool {
    let ip = target.ip().to_canonical();
    own.iter().any(|o| {
        o.port() == target.port()
            && (o.ip().to_canonical() == ip
                || ip.is_loopback()
                || ip.is_unspecified()
                || (o.ip().is_unspecified() && is_local(ip)))
    })
}

/// Whether `ip` is an address of this host: binding a socket to it works
/// only then (no packet is sent).
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A connection to an instance, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects to `endpoint`, with a TLS handshake when `tls` is given;
    /// never to an address among the gateway's own listeners `own`
    /// (checked on every address the host resolves to, so no name or
    /// alias reaches them).
    pub async fn connect(
        endpoint: &Endpoint,
        tls: Option<&Upstream>,
        own: &[SocketAddr],
    ) -> Result<Self, DialError> {
        let addr = endpoint.authority.as_str();
        let failed = |e: io::Error| DialError {
            local: is_local_exhaustion(&e),
            detail: if is_local_exhaustion(&e) {
                format!("cannot open a connection to {addr}: {e} (a limit of this gateway, e.g. `ulimit -n`, not the instance's fault)")
            } else {
                format!("connect to {addr}: {e}")
            },
        };
        let targets: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(failed)?
            .collect();
        if let Some(t) = targets.iter().find(|t| is_own_listener(own, **t)) {
            return Err(DialError::instance(format!(
                "connect to {addr}: refused: {t} is one of this gateway's own listeners"
            )));
        }
        let tcp = TcpStream::connect(&targets[..]).await.map_err(failed)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_listeners_are_known_by_any_local_alias() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let own = [a("127.0.0.1:8080"), a("0.0.0.0:9090")];
        for t in [
            "127.0.0.1:8080",
            "127.0.0.2:8080",
            "0.0.0.0:8080",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
            "127.0.0.1:9090",
            "[::]:9090",
        ] {
            assert!(is_own_listener(&own, a(t)), "{t}");
        }
        for t in ["127.0.0.1:8081", "192.0.2.1:8080", "192.0.2.1:9090"] {
            assert!(!is_own_listener(&own, a(t)), "{t}");
        }
    }

    #[tokio::test]
    async fn a_connection_to_an_own_listener_is_never_opened() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let ep = fulcrum_config::parse_endpoint(&format!("http://localhost:{port}/x")).unwrap();
        let own = [SocketAddr::from(([127, 0, 0, 1], port))];
        let e = Stream::connect(&ep, None, &own).await.unwrap_err();
        assert!(!e.local && e.detail.contains("own listeners"), "{e:?}");
        assert!(Stream::connect(&ep, None, &[]).await.is_ok());
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), l.accept()).await;
        assert!(accepted.is_ok(), "the allowed connect reached the listener");
        let again = tokio::time::timeout(std::time::Duration::from_millis(100), l.accept()).await;
        assert!(again.is_err(), "the refused one never did");
    }
}
