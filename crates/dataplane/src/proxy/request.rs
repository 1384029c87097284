//! From a caller's request to one ready to be tried: the route, the size
//! check, **one bounded read-ahead of the body** shared by the cache key,
//! retry replay and any later body-based routing, the cache lookup, the
//! `consistent_hash` key and the forwarding headers.

use super::tunnel;
use crate::cache::{self, Fill, Lookup};
use crate::clock::Clock;
use crate::http::body::{
    buffer_for_replay, empty, full, BoxError, Buffered, Counted, ProxyBody, Tracked,
};
use crate::http::compress::Plan;
use crate::http::{headers, path};
use crate::http::{Peer, ProxyError};
use crate::observe::Pending;
use crate::runtime::{InstanceState, PoolRuntime, RouteMiss, Snapshot};
use crate::upstream::error::body_read_error;
use bytes::Bytes;
use fulcrum_config::HashKey;
use fulcrum_policy::hash_bytes;
use fulcrum_policy::retry::is_idempotent;
use fulcrum_policy::RequestClass;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;

/// A request routed and read ahead, ready for the attempt loop.
pub struct Prepared {
    pub pool: Arc<PoolRuntime>,
    pub out: Outgoing,
    pub idempotent: bool,
    /// The hashed `consistent_hash` key, when the pool has one and the
    /// request carries it.
    pub key: Option<u64>,
    /// The caller's side of a WebSocket handshake.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// A cache miss to fill with the answer.
    pub fill: Option<Fill>,
    /// How the answer may be compressed (a route with `compression:`).
    pub compress: Option<Plan>,
    /// The request's class in the pool's admission queue.
    pub class: RequestClass,
}

/// What preparing a request led to.
pub enum Ready {
    /// Answered from the cache of this pool (and compressed, if the route
    /// and the caller ask for it, like any answer).
    Hit(Response<ProxyBody>, Arc<PoolRuntime>, Option<Plan>),
    Go(Box<Prepared>),
}

/// Routes `req`, reads its body ahead as far as needed, and looks it up in
/// the pool's cache; the body's bytes in go to the record `rec`.
pub async fn prepare<B>(
    snap: &Snapshot,
    clock: &Clock,
    mut req: Request<B>,
    peer: &Peer,
    rid: &HeaderValue,
    rec: &mut Pending,
) -> Result<Ready, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    // A WebSocket handshake: balanced like any request, then tunnelled.
    let upgrade = tunnel::wants_websocket(req.headers()).then(|| hyper::upgrade::on(&mut req));
    check_framing(req.headers())?;
    normalize_path(&mut req)?;
    let (pool, skip, compress, class) = route(snap, &req)?;
    let (parts, body) = req.into_parts();
    let limit = snap.config.limits.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let cache = pool
        .cache
        .as_ref()
        .filter(|c| upgrade.is_none() && c.applies(&parts.method, &parts.headers))
        // Only a body of declared, small size is read for the key: a
        // chunked upload (live audio) must stream, so it bypasses the cache.
        .filter(|_| {
            body.is_end_stream() || declared.is_some_and(|n| n <= cache::MAX_KEYED_BODY as u64)
        });
    let body = match read_ahead(body, &pool, declared, limit, cache.is_some()).await? {
        Buffered::Replayable(b) => {
            rec.record().bytes_in = b.len() as u64;
            Buffered::Replayable(b)
        }
        // Counted as it streams on (only such a body pays for a counter).
        Buffered::Streaming(s) => {
            let (s, n) = Counted::new(s);
            rec.count_in(n);
            Buffered::Streaming(s.boxed_unsync())
        }
    };
    let fill = match (cache, &body) {
        (Some(c), Buffered::Replayable(b)) => {
            let host = parts
                .headers
                .get(header::HOST)
                .map(|h| h.as_bytes())
                .or(parts.uri.authority().map(|a| a.as_str().as_bytes()))
                .unwrap_or_default();
            let k = cache::key(&parts.method, host, skip, &parts.uri, b);
            let wait = pool.cfg.timeouts.response_header.min(cache::LOCK_TIMEOUT);
            match c.lookup(k, &parts.headers, || clock.now_ms(), wait).await {
                Lookup::Hit(resp) => return Ok(Ready::Hit(resp, pool, compress)),
                Lookup::Miss(fill) => Some(fill),
            }
        }
        _ => None,
    };
    let key = pool
        .cfg
        .hash_key
        .as_ref()
        .and_then(|k| request_key(k, &parts.headers, &parts.uri, peer));
    let mut hdrs = parts.headers;
    headers::to_upstream(&mut hdrs, parts.uri.authority(), &peer.ip, peer.proto, rid);
    if upgrade.is_some() {
        // Hop-by-hop, but the handshake needs them on the next hop too.
        hdrs.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        hdrs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    Ok(Ready::Go(Box::new(Prepared {
        idempotent: is_idempotent(parts.method.as_str()),
        out: Outgoing {
            method: parts.method,
            headers: hdrs,
            uri: parts.uri,
            skip,
            body: Some(body),
        },
        pool,
        key,
        upgrade,
        fill,
        compress,
        class,
    })))
}

/// RFC 9112 corners of the caller's head: one `Host` only (§3.2), and no
/// transfer coding but `chunked` (§6.1: 501 rather than losing a `gzip`
/// coding silently on the way to the instance).
fn check_framing(h: &http::HeaderMap) -> Result<(), ProxyError> {
    let mut hosts = h.get_all(header::HOST).iter();
    if hosts.next().is_some() && hosts.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Host header".into()));
    }
    for v in h.get_all(header::TRANSFER_ENCODING) {
        let codings = v.to_str().unwrap_or("?");
        if codings
            .split(',')
            .map(str::trim)
            .any(|c| !c.eq_ignore_ascii_case("chunked"))
        {
            return Err(ProxyError::NotImplemented(format!(
                "transfer coding `{codings}` (only chunked is supported)"
            )));
        }
    }
    Ok(())
}

/// Resolves the dot segments of the path before it is matched and
/// forwarded, so a route prefix cannot be escaped (`/asr/../admin`).
fn normalize_path<B>(req: &mut Request<B>) -> Result<(), ProxyError> {
    let bad = |e: &str| ProxyError::BadRequest(e.to_string());
    let std::borrow::Cow::Owned(p) = path::normalize(req.uri().path()).map_err(bad)? else {
        return Ok(());
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{p}?{q}"),
        None => p,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(pq.parse().map_err(|_| bad("malformed path"))?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| bad("malformed path"))?;
    Ok(())
}

/// The pool for a request, how many bytes of its path the route consumes,
/// how its answer may be compressed, and the request's class: the
/// route's, or the one its `X-Fulcrum-Priority` names when the route lets
/// it (a value that names no class is ignored).
fn route<B>(
    snap: &Snapshot,
    req: &Request<B>,
) -> Result<(Arc<PoolRuntime>, usize, Option<Plan>, RequestClass), ProxyError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    match snap.route(host, req.uri().path()) {
        Ok(r) => {
            let compress = r
                .compression
                .map(|c| Plan::new(c, req.method(), req.headers()));
            let asked = match r.class_header {
                true => req.headers().get(headers::X_FULCRUM_PRIORITY),
                false => None,
            };
            let class = asked
                .and_then(|v| RequestClass::from_header(v.as_bytes()))
                .unwrap_or(r.class);
            Ok((r.pool.clone(), r.skip, compress, class))
        }
        Err(RouteMiss::NoRoute) => Err(ProxyError::NoRoute),
        Err(RouteMiss::NoService(task)) => Err(ProxyError::NoService(task)),
    }
}

/// The one read-ahead of the body: as much as the cache key needs, or the
/// retry buffer when a small body may be replayed; a chunked or large body
/// streams at once. Both can still go to another instance after a connect
/// error, which never consumes the body.
async fn read_ahead<B>(
    body: B,
    pool: &PoolRuntime,
    declared: Option<u64>,
    limit: u64,
    for_cache: bool,
) -> Result<Buffered, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(Buffered::Replayable(Bytes::new()));
    }
    let idle = pool.cfg.timeouts.idle;
    let retry = &pool.cfg.retry;
    // A caller that stops sending its body mid-way gets 408 after
    // `timeouts.idle` instead of holding the request open forever.
    let body = Tracked::new(Limited::new(body, limit as usize), (), idle);
    let fits = declared.is_some_and(|n| n <= retry.buffer as u64);
    let keep = if for_cache {
        Some(cache::MAX_KEYED_BODY)
    } else if retry.tries > 1 && fits {
        Some(retry.buffer)
    } else {
        None
    };
    match keep {
        Some(keep) => buffer_for_replay(body, keep)
            .await
            .map_err(|e| body_read_error(e, limit, idle)),
        None => Ok(Buffered::Streaming(body.boxed_unsync())),
    }
}

/// The `consistent_hash` key of a request, hashed; `None` when absent.
fn request_key(kind: &HashKey, headers: &HeaderMap, uri: &Uri, peer: &Peer) -> Option<u64> {
    match kind {
        HashKey::ClientIp => Some(hash_bytes(peer.ip.as_bytes())),
        HashKey::Header(name) => headers.get(name.as_str()).map(|v| hash_bytes(v.as_bytes())),
        HashKey::Cookie(name) => find_pair(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|c| c.split(';')),
            name,
        ),
        HashKey::Query(name) => find_pair(uri.query()?.split('&'), name),
    }
}

/// The hashed value of `name` among `k=v` pairs.
fn find_pair<'a>(mut pairs: impl Iterator<Item = &'a str>, name: &str) -> Option<u64> {
    pairs.find_map(|kv| {
        let (k, v) = kv.trim().split_once('=').unwrap_or((kv.trim(), ""));
        (k == name).then(|| hash_bytes(v.as_bytes()))
    })
}

/// The upstream path and query for `path` under a route.
fn target(base: &str, rest: &str, query: Option<&str>) -> String {
    let mut s = String::with_capacity(base.len() + rest.len() + 2 + query.map_or(0, str::len));
    s.push_str(base);
    if !rest.is_empty() {
        if !rest.starts_with('/') {
            s.push('/');
        }
        s.push_str(rest);
    } else if s.is_empty() {
        s.push('/');
    }
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// The request as it goes upstream, kept across tries.
pub struct Outgoing {
    method: Method,
    headers: HeaderMap,
    /// The caller's URI; the forwarded path is its path from byte `skip` on.
    uri: Uri,
    skip: usize,
    body: Option<Buffered>,
}

impl Outgoing {
    /// Whether the body can be sent again after the instance has read it.
    pub fn replayable(&self) -> bool {
        matches!(self.body, Some(Buffered::Replayable(_)))
    }

    /// Whether the body is still at hand for another try.
    pub fn can_resend(&self) -> bool {
        self.body.is_some()
    }

    /// Takes back a request that never left (connect error).
    pub fn restore(&mut self, req: Request<ProxyBody>) {
        let (parts, body) = req.into_parts();
        self.headers = parts.headers;
        if self.body.is_none() {
            self.body = Some(Buffered::Streaming(body));
        }
    }

    /// The request for one try on `inst` (origin-form URI, the instance's
    /// `Host`); a streaming body can be taken only once, and the last try
    /// takes the headers instead of copying them.
    pub fn build(
        &mut self,
        inst: &InstanceState,
        last_try: bool,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let pq = target(
            &inst.endpoint.base_path,
            &self.uri.path()[self.skip..],
            self.uri.query(),
        );
        let uri = Uri::from_maybe_shared(Bytes::from(pq))
            .map_err(|e| ProxyError::BadRequest(format!("cannot build upstream URL: {e}")))?;
        let body = match &self.body {
            Some(Buffered::Replayable(b)) if b.is_empty() => empty(),
            Some(Buffered::Replayable(b)) => full(b.clone()),
            _ => match self.body.take() {
                Some(Buffered::Streaming(s)) => s,
                _ => empty(),
            },
        };
        let headers = if last_try {
            std::mem::take(&mut self.headers)
        } else {
            self.headers.clone()
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        req.headers_mut()
            .insert(header::HOST, inst.origin.host.clone());
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::{route, target};
    use crate::runtime::Snapshot;
    use fulcrum_policy::RequestClass::{self, Batch, Interactive, Normal};
    use std::sync::Arc;

    #[test]
    fn the_class_is_the_routes_unless_the_header_may_and_does_name_another() {
        let yaml = "pools: { p: { instances: [ { endpoint: \"http://127.0.0.1:1\" } ] } }\n\
            routes:\n\
            \x20 - { path_prefix: /bulk/, pool: p, priority: batch, priority_header: false }\n\
            \x20 - { path_prefix: /chat/, pool: p, priority: interactive }\n\
            \x20 - { path_prefix: /, pool: p }\n";
        let cfg = fulcrum_config::parse(yaml, &|_| None).unwrap();
        let snap = Snapshot::build(Arc::new(cfg), None, 0);
        let class = |path: &str, header: Option<&str>| -> RequestClass {
            let mut b = http::Request::builder().uri(path);
            if let Some(h) = header {
                b = b.header("x-fulcrum-priority", h);
            }
            route(&snap, &b.body(()).unwrap()).unwrap().3
        };
        assert_eq!(class("/x", None), Normal, "the default");
        assert_eq!(class("/chat/x", None), Interactive);
        assert_eq!(class("/x", Some("batch")), Batch);
        assert_eq!(
            class("/chat/x", Some("Batch")),
            Batch,
            "the header may lower it"
        );
        assert_eq!(
            class("/x", Some("urgent")),
            Normal,
            "a value that names no class is ignored"
        );
        assert_eq!(
            class("/bulk/x", Some("interactive")),
            Batch,
            "priority_header: false ignores the header"
        );
    }

    #[test]
    fn targets_join_base_rest_and_query() {
        assert_eq!(target("", "/x", None), "/x");
        assert_eq!(target("", "", None), "/");
        assert_eq!(target("/infer", "", None), "/infer");
        assert_eq!(target("/v1", "chat", Some("a=1")), "/v1/chat?a=1");
        assert_eq!(target("/v1", "/chat", None), "/v1/chat");
    }
}
