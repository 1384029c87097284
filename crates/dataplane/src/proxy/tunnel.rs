//! WebSocket pass-through. The handshake is balanced, retried and answered
//! like any request; once the instance answers `101 Switching Protocols`,
//! the caller's and the instance's connections are joined and bytes are
//! copied both ways until the instance closes (once everything it sent has
//! reached the caller, the caller's side is closed too, as nginx does), the
//! caller closes both ways, or nothing moves for `timeouts.idle`. The instance's in-flight slot is held for the life of
//! the socket, so `least_connections` counts open WebSockets. The
//! request's record is finished when the tunnel closes, with the bytes
//! that crossed it each way.

use crate::http::body::{empty, ProxyBody};
use crate::http::headers;
use crate::observe::{Outcome, Pending};
use crate::runtime::instance::{InFlightGuard, InstanceState};
use http::{header, HeaderMap, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Copy buffer per direction of a tunnel.
const TUNNEL_BUF: usize = 4096;

/// Whether a request asks to become a WebSocket.
pub fn wants_websocket(h: &HeaderMap) -> bool {
    let upgrade = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    upgrade && connection
}

/// Answers the caller with the instance's `101` and starts the tunnel.
pub fn open(
    resp: Response<Incoming>,
    client: hyper::upgrade::OnUpgrade,
    mut guard: InFlightGuard,
    inst: Arc<InstanceState>,
    idle: Duration,
    mut record: Pending,
) -> Response<ProxyBody> {
    guard.untime();
    let (parts, body) = resp.into_parts();
    let upstream = hyper::upgrade::on(Response::from_parts(parts.clone(), body));
    // Counted before the 101 goes out, so a caller that sees the switch
    // also sees the socket in the stats.
    let open_socket = inst.websocket_opened();
    tokio::spawn(async move {
        let _slot = guard;
        let _open = open_socket;
        let (client, upstream) = match tokio::join!(client, upstream) {
            (Ok(c), Ok(u)) => (c, u),
            (c, u) => {
                tracing::debug!(client = ?c.err(), upstream = ?u.err(), "WebSocket upgrade did not complete");
                record.finish(Outcome::Dropped);
                return;
            }
        };
        let seen = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        // Set when the instance's end has been relayed (the caller's write
        // side shut down): the session is over, whatever the caller does.
        let ended = Arc::new(tokio::sync::Notify::new());
        let mut a = Activity {
            inner: TokioIo::new(client),
            seen: seen.clone(),
            start,
            shut: Some(ended.clone()),
            read: 0,
            written: 0,
        };
        let mut b = Activity {
            inner: TokioIo::new(upstream),
            seen: seen.clone(),
            start,
            shut: None,
            read: 0,
            written: 0,
        };
        let outcome = relay(&mut a, &mut b, &seen, start, idle, &ended).await;
        // The caller's side: what it sent in, and what reached it.
        let r = record.record();
        (r.bytes_in, r.bytes_out) = (a.read, a.written);
        record.finish(outcome);
    });
    let mut out = Response::new(empty());
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    headers::strip_hop_by_hop(out.headers_mut());
    out.headers_mut().insert(
        header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    out.headers_mut()
        .insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    out
}

/// Copies both ways until either side closes, the instance's end has been
/// relayed, or nothing moves for `idle`; how the session ended.
async fn relay<C, U>(
    a: &mut Activity<C>,
    b: &mut Activity<U>,
    seen: &AtomicU64,
    start: Instant,
    idle: Duration,
    ended: &tokio::sync::Notify,
) -> Outcome
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    // 4 KiB per direction instead of tokio's 8 KiB default: an idle
    // device socket costs memory for its whole life, and voice frames
    // (Opus, JSON control messages) are far smaller than that.
    let copy = tokio::io::copy_bidirectional_with_sizes(a, b, TUNNEL_BUF, TUNNEL_BUF);
    tokio::pin!(copy);
    loop {
        let last = Duration::from_millis(seen.load(Relaxed));
        let deadline = start + last + idle;
        tokio::select! {
            r = &mut copy => {
                return match r {
                    Ok(_) => Outcome::Complete,
                    Err(e) => {
                        tracing::debug!(error = %e, "WebSocket tunnel closed with an error");
                        Outcome::BodyFailed
                    }
                };
            }
            _ = ended.notified() => {
                tracing::debug!("instance closed the WebSocket; closing the caller's side");
                return Outcome::Complete;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if start.elapsed() >= Duration::from_millis(seen.load(Relaxed)) + idle {
                    tracing::debug!(?idle, "WebSocket idle for timeouts.idle; closing");
                    return Outcome::Complete;
                }
            }
        }
    }
}

pin_project! {
    /// Records, in ms since `start`, when bytes last moved through `inner`,
    /// and counts the bytes read from it and written to it.
    struct Activity<T> {
        #[pin]
        inner: T,
        seen: Arc<AtomicU64>,
        start: Instant,
        // Rung once a shutdown of `inner` completes.
        shut: Option<Arc<tokio::sync::Notify>>,
        read: u64,
        written: u64,
    }
}

impl<T> Activity<T> {
    fn stamp(seen: &AtomicU64, start: Instant) {
        seen.store(start.elapsed().as_millis() as u64, Relaxed);
    }
}

impl<T: AsyncRead> AsyncRead for Activity<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.inner.poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            *this.read += (buf.filled().len() - before) as u64;
            Self::stamp(this.seen, *this.start);
        }
        r
    }
}

impl<T: AsyncWrite> AsyncWrite for Activity<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            *this.written += n as u64;
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let r = this.inner.poll_shutdown(cx);
        if r.is_ready() {
            if let Some(n) = this.shut {
                n.notify_one();
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_websocket_upgrade_is_tunnelled() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(wants_websocket(&h));
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(!wants_websocket(&h));
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(!wants_websocket(&h), "Connection: upgrade is required");
    }
}
