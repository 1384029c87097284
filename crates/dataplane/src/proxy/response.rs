//! An instance's answer on its way to the caller: hop-by-hop headers
//! removed, the body streamed through a [`Tracked`] wrapper that enforces
//! `timeouts.idle` and carries the request's completion handle.

use super::feedback::Done;
use crate::http::body::{ProxyBody, SendTimeout, Tracked};
use crate::http::headers;
use crate::observe::Pending;
use crate::runtime::{InFlightGuard, PoolRuntime};
use crate::upstream::Pooled;
use http::Response;
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The caller's response for an instance's answer.
pub fn respond(
    resp: Response<Incoming>,
    conn: Pooled,
    guard: Option<InFlightGuard>,
    pool: &PoolRuntime,
    record: &mut Pending,
) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    record.head(parts.status, None);
    // A body that is already complete (no content) frees the connection now;
    // otherwise it goes back when the body has been read to the end.
    let conn = if body.is_end_stream() {
        conn.give_back();
        None
    } else {
        Some(conn)
    };
    let done = Done {
        guard,
        conn,
        record: record.hand_over(),
    };
    let idle = pool.cfg.timeouts.idle;
    // The listener closes the connection of a caller that takes nothing of
    // the answer for as long (the body is not polled then, so its own timer
    // cannot see it); the body is dropped with it and `done` frees the slot.
    parts.extensions.insert(SendTimeout(idle));
    let body = Tracked::new(body, done, idle).boxed_unsync();
    Response::from_parts(parts, body)
}
