//! One request, start to end: prepare it (route, read-ahead, cache), run
//! the attempt loop, and answer — with the request's record finished when
//! the response body ends (or at once for the gateway's own answers).

use super::admission::Env;
use super::attempt;
use super::request::{prepare, Ready};
use crate::http::body::{BoxError, ProxyBody};
use crate::http::compress;
use crate::http::headers::{self, X_REQUEST_ID};
use crate::http::{Peer, ProxyError};
use crate::observe::{CacheStatus, Outcome, Pending};
use crate::Gateway;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use std::sync::Arc;

/// Serves one request from a caller at `peer`.
pub async fn handle<B>(gw: Arc<Gateway>, req: Request<B>, peer: &Peer) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let rid = headers::request_id(req.headers(), &gw.rng);
    let mut rec = Pending::new(
        gw.observer(),
        gw.clock.instant(),
        req.method().clone(),
        req.uri().clone(),
    );
    rec.caller(peer.addr, req.version(), &rid, req.headers());
    match serve(&gw, req, peer, &rid, &mut rec).await {
        Ok(mut resp) => {
            resp.headers_mut().insert(X_REQUEST_ID, rid);
            resp
        }
        Err(e) => {
            tracing::debug!(request_id = ?rid, error = %e, detail = e.detail(), "request failed");
            rec.head(e.status(), Some(e.blame()));
            let resp = e.to_response(&rid);
            rec.record().bytes_out = body_len(&resp);
            rec.finish(Outcome::Complete);
            resp
        }
    }
}

async fn serve<B>(
    gw: &Gateway,
    req: Request<B>,
    peer: &Peer,
    rid: &HeaderValue,
    rec: &mut Pending,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let snap = gw.snapshot();
    let p = match prepare(&snap, &gw.clock, req, peer, rid, rec).await? {
        Ready::Hit(resp, pool, plan) => {
            rec.routed(&pool);
            let r = rec.record();
            r.cache = CacheStatus::Hit;
            r.bytes_out = body_len(&resp);
            rec.head(resp.status(), None);
            rec.hand_over().finish(Outcome::Complete);
            return Ok(compress::maybe(plan, resp));
        }
        Ready::Go(p) => p,
    };
    rec.routed(&p.pool);
    rec.record().class = Some(p.class);
    rec.record().cache = match (&p.fill, &p.pool.cache) {
        (Some(_), _) => CacheStatus::Miss,
        (None, Some(_)) => CacheStatus::Bypass,
        (None, None) => CacheStatus::None,
    };
    let req = attempt::Request {
        out: p.out,
        idempotent: p.idempotent,
        key: p.key,
        upgrade: p.upgrade,
        class: p.class,
        max_body: snap.config.limits.max_body,
    };
    let env = Env {
        clock: &gw.clock,
        rng: &gw.rng,
        events: &gw.events,
    };
    let resp = attempt::run(env, &p.pool, req, rec).await?;
    let resp = match p.fill {
        Some(fill) => fill.wrap(resp, gw.clock.now_ms()),
        None => resp,
    };
    // After the cache, which keeps answers as the instance wrote them.
    Ok(compress::maybe(p.compress, resp))
}

/// The length of an answer made in memory (an error, a cache hit).
fn body_len(resp: &Response<ProxyBody>) -> u64 {
    resp.body().size_hint().exact().unwrap_or(0)
}
