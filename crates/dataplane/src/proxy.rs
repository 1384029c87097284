//! The request path: route → admission → try an instance → retry on a
//! listed failure → stream the response back.
//!
//! A try that fails before a response head arrives (connect error, reset,
//! garbage, header timeout), or answers with a status listed in
//! `retry.on`, is recorded against the instance (passive ejection) and —
//! when the retry decision allows — repeated on a different instance.
//! Once a response is handed to the caller it is never retried.

use crate::admission::acquire;
use crate::body::{buffer_for_replay, empty, full, Buffered, IdleTimeout, ProxyBody, Tracked};
use crate::cache;
use crate::error::ProxyError;
use crate::headers::{self, X_REQUEST_ID};
use crate::snapshot::{PoolRuntime, RouteMiss, Snapshot};
use crate::tunnel;
use crate::upstream::{self, caused_by, is_too_large, Pooled, SendError};
use crate::{load_report, Gateway};
use bytes::Bytes;
use fulcrum_config::HashKey;
use fulcrum_policy::hash_bytes;
use fulcrum_policy::retry::{decide, is_idempotent, Attempt, Decision, Failure};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// The caller of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s IP as a header value, for `X-Forwarded-For` and `X-Real-IP`.
    pub ip: HeaderValue,
    /// `http` or `https` (TLS terminated here), for `X-Forwarded-Proto`.
    pub proto: &'static str,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ip: headers::ip_value(addr.ip()),
            proto: "http",
        }
    }

    /// The caller came over TLS.
    pub fn with_tls(mut self) -> Self {
        self.proto = "https";
        self
    }
}

/// Serves one request from a caller at `peer`.
pub async fn handle<B>(gw: Arc<Gateway>, req: Request<B>, peer: &Peer) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    let snap = gw.snapshot();
    let rid = headers::request_id(req.headers());
    match forward(&gw, &snap, req, peer, &rid).await {
        Ok(mut resp) => {
            resp.headers_mut().insert(X_REQUEST_ID, rid);
            resp
        }
        Err(e) => {
            tracing::debug!(request_id = ?rid, error = %e, "request failed");
            e.to_response(&rid)
        }
    }
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

async fn forward<B>(
    gw: &Gateway,
    snap: &Snapshot,
    mut req: Request<B>,
    peer: &Peer,
    rid: &HeaderValue,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    // A WebSocket handshake: balanced like any request, then tunnelled.
    let upgrade = tunnel::wants_websocket(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    let path = req.uri().path();
    let (pool, skip) = snap.route(host, path).map_err(|m| match m {
        RouteMiss::NoRoute => ProxyError::NoRoute,
        RouteMiss::NoService(task) => ProxyError::NoService(task),
    })?;

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
    let policy = &pool.cfg.retry;
    let idempotent = is_idempotent(parts.method.as_str());
    let idle = pool.cfg.timeouts.idle;
    // The response cache keys on the body, so a cacheable request's body
    // is read first (up to MAX_KEYED_BODY; a larger one bypasses the cache).
    let cache = pool
        .cache
        .as_ref()
        .filter(|c| upgrade.is_none() && c.applies(&parts.method, &parts.headers))
        // Only a body of declared, small size is read for the key: a
        // chunked upload (live audio) must stream, so it bypasses the cache.
        .filter(|_| {
            body.is_end_stream() || declared.is_some_and(|n| n <= cache::MAX_KEYED_BODY as u64)
        });
    let body = if body.is_end_stream() {
        Buffered::Replayable(Bytes::new())
    } else {
        // A caller that stops sending its body mid-way gets 408 after
        // `timeouts.idle` instead of holding the request open forever.
        let body = Tracked::new(Limited::new(body, limit as usize), None, None, idle);
        // Only a body of declared, small size is held back for replay; a
        // chunked one (live audio) streams at once. Both can still go to
        // another instance after a connect error, which never consumes it.
        let fits = declared.is_some_and(|n| n <= policy.buffer as u64);
        let keep = if cache.is_some() {
            Some(cache::MAX_KEYED_BODY)
        } else if policy.tries > 1 && fits {
            Some(policy.buffer)
        } else {
            None
        };
        if let Some(keep) = keep {
            buffer_for_replay(body, keep).await.map_err(|e| {
                if is_too_large(e.as_ref()) {
                    ProxyError::BodyTooLarge { limit }
                } else if caused_by::<IdleTimeout>(e.as_ref()) {
                    ProxyError::ClientTimeout(idle)
                } else {
                    ProxyError::BadRequest(format!("reading the request body: {e}"))
                }
            })?
        } else {
            Buffered::Streaming(body.boxed_unsync())
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
            let now = || gw.clock.now_ms();
            match c
                .lookup(
                    k,
                    &parts.headers,
                    now,
                    pool.cfg.timeouts.response_header.min(cache::LOCK_TIMEOUT),
                )
                .await
            {
                cache::Lookup::Hit(resp) => return Ok(resp),
                cache::Lookup::Miss(fill) => Some(fill),
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
    let req = Outgoing {
        method: parts.method,
        headers: hdrs,
        uri: parts.uri,
        skip,
        body: Some(body),
    };
    let resp = attempt_loop(gw, pool, req, idempotent, key, upgrade).await?;
    Ok(match fill {
        Some(fill) => fill.wrap(resp, gw.clock.now_ms()),
        None => resp,
    })
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

/// Seconds in a `Retry-After` header (the delta-seconds form), capped at 5 minutes.
fn retry_after_secs(h: &HeaderMap) -> Option<u64> {
    h.get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.min(300))
}

struct Outgoing {
    method: Method,
    headers: HeaderMap,
    /// The caller's URI; the forwarded path is its path from byte `skip` on.
    uri: Uri,
    skip: usize,
    body: Option<Buffered>,
}

impl Outgoing {
    fn rest(&self) -> &str {
        &self.uri.path()[self.skip..]
    }

    fn replayable(&self) -> bool {
        matches!(self.body, Some(Buffered::Replayable(_)))
    }

    /// Whether the body is still at hand for another try.
    fn can_resend(&self) -> bool {
        self.body.is_some()
    }

    /// Takes back a request that never left (connect error).
    fn restore(&mut self, req: Request<ProxyBody>) {
        let (parts, body) = req.into_parts();
        self.headers = parts.headers;
        if self.body.is_none() {
            self.body = Some(Buffered::Streaming(body));
        }
    }

    /// The request for one try; a streaming body can be taken only once.
    fn build(&mut self, uri: Uri, host: HeaderValue, last_try: bool) -> Request<ProxyBody> {
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
        req.headers_mut().insert(header::HOST, host);
        req
    }
}

async fn attempt_loop(
    gw: &Gateway,
    pool: &Arc<PoolRuntime>,
    mut out: Outgoing,
    idempotent: bool,
    key: Option<u64>,
    mut upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let policy = &pool.cfg.retry;
    let measures = pool.measures();
    let reports = pool.cfg.algorithm.inputs().resources;
    let timeouts = &pool.cfg.timeouts;
    // Only read the clock when a retry budget needs it.
    let started = policy.timeout.map(|_| Instant::now());
    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<ProxyError> = None;
    // The last try's answer when it was a status listed for retry: if no
    // other instance can take the request, the caller gets this answer (as
    // with nginx), not a gateway-made 502.
    let mut last_answer: Option<(Response<Incoming>, Pooled)> = None;
    loop {
        let (slot, guard) = match acquire(pool, &gw.clock, &tried, key).await {
            Ok(x) => x,
            // Out of instances to retry on: report what went wrong last.
            Err(e) => {
                return match last_answer.take() {
                    Some((resp, conn)) => Ok(respond(resp, conn, None, pool)),
                    None => Err(last.unwrap_or(e)),
                };
            }
        };
        let inst = &pool.members[slot].inst;
        let ep = &inst.endpoint;
        // Each try waits for a response head at most `response_header`,
        // and never beyond what is left of the retry budget.
        let mut wait = timeouts.response_header;
        if let (Some(budget), Some(t0)) = (policy.timeout, started) {
            wait = wait.min(budget.saturating_sub(t0.elapsed()));
        }
        let pq = target(&ep.base_path, out.rest(), out.uri.query());
        // Origin-form (`/path?query`) on the wire, with the instance's Host.
        let uri = Uri::from_maybe_shared(Bytes::from(pq))
            .map_err(|e| ProxyError::BadRequest(format!("cannot build upstream URL: {e}")))?;
        let last_try = !out.replayable() || tried.len() + 1 >= policy.tries as usize;
        let req = out.build(uri, inst.host.clone(), last_try);
        let sent_at = Instant::now();
        let send = async {
            match upgrade.is_some() {
                true => upstream::send_upgrade(inst, req, timeouts.connect).await,
                false => upstream::send(inst, req, timeouts.connect).await,
            }
        };
        let res = tokio::time::timeout(wait, send).await;
        let now = gw.clock.now_ms();
        let (failure, detail, answer) = match res {
            Err(_) => (
                Failure::Timeout,
                format!("no response head within {wait:?}"),
                None,
            ),
            Ok(Err(SendError::Local { detail })) => {
                // Out of file descriptors or ports: retrying elsewhere would
                // hit the same wall, and the instance is not to blame.
                tracing::error!(pool = %pool.cfg.name, instance = %ep.url, %detail, "cannot open an upstream connection");
                return Err(ProxyError::Exhausted {
                    pool: pool.cfg.name.clone(),
                    detail,
                });
            }
            Ok(Err(SendError::BodyTooLarge)) => {
                return Err(ProxyError::BodyTooLarge {
                    limit: gw.snapshot().config.limits.max_body,
                });
            }
            Ok(Err(SendError::Downstream { idle, detail })) => {
                // The caller's body failed: not the instance's fault, not retried.
                return Err(if idle {
                    ProxyError::ClientTimeout(timeouts.idle)
                } else {
                    ProxyError::BadRequest(detail)
                });
            }
            Ok(Err(SendError::Failed {
                failure,
                detail,
                unsent,
            })) => {
                if let Some(req) = unsent {
                    out.restore(*req);
                }
                (failure, detail, None)
            }
            Ok(Ok((resp, conn))) => {
                let status = resp.status().as_u16();
                let took = sent_at.elapsed();
                inst.latency.record_us(took.as_micros() as u64);
                if measures {
                    inst.observe(Some(took.as_secs_f64() * 1000.0), status >= 500, now);
                }
                if reports {
                    let report = resp
                        .headers()
                        .get(load_report::HEADER)
                        .and_then(|v| v.to_str().ok());
                    if let Some(r) = report.and_then(load_report::parse) {
                        inst.report_load(r, now);
                    }
                }
                if status == 429 || status == 503 {
                    if let Some(secs) = retry_after_secs(resp.headers()) {
                        // The instance asked for a pause: give it one.
                        inst.cool_down(now.saturating_add(secs * 1000));
                        tracing::info!(pool = %pool.cfg.name, instance = %ep.url, status, secs, "instance cooling down (Retry-After)");
                    }
                }
                if status == 101 {
                    if let Some(client) = upgrade.take() {
                        return Ok(tunnel::open(
                            resp,
                            client,
                            guard,
                            inst.clone(),
                            timeouts.idle,
                        ));
                    }
                }
                if !policy.on.statuses.contains(&status) {
                    return Ok(respond(resp, conn, Some(guard), pool));
                }
                (
                    Failure::Status(status),
                    format!("answered {status}"),
                    Some((resp, conn)),
                )
            }
        };
        if measures && answer.is_none() {
            let waited = (failure == Failure::Timeout).then_some(wait.as_secs_f64() * 1000.0);
            inst.observe(waited, true, now);
        }
        if let Some(until) = inst.record_failure(now, pool.cfg.passive) {
            tracing::warn!(pool = %pool.cfg.name, instance = %ep.url, failure = %failure,
                ejected_for_ms = until - now, "instance ejected after repeated failures");
        }
        tried.push(slot);
        let attempt = Attempt {
            tries_made: tried.len() as u32,
            idempotent,
            replayable: out.can_resend(),
            elapsed: started.map_or(std::time::Duration::ZERO, |s| s.elapsed()),
        };
        let decision = decide(policy, failure, attempt);
        tracing::debug!(pool = %pool.cfg.name, instance = %ep.url, %failure, ?decision, "try failed");
        if decision != Decision::Retry {
            return match answer {
                // A listed status that will not be retried is still the
                // instance's answer: pass it on.
                Some((resp, conn)) => Ok(respond(resp, conn, Some(guard), pool)),
                None => Err(ProxyError::Upstream {
                    pool: pool.cfg.name.clone(),
                    failure,
                    detail,
                }),
            };
        }
        drop(guard);
        last = Some(ProxyError::Upstream {
            pool: pool.cfg.name.clone(),
            failure,
            detail,
        });
        last_answer = answer;
    }
}

fn respond(
    resp: Response<Incoming>,
    conn: Pooled,
    guard: Option<crate::instance::InFlightGuard>,
    pool: &PoolRuntime,
) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    // A body that is already complete (no content) frees the connection now;
    // otherwise it goes back when the body has been read to the end.
    let conn = if body.is_end_stream() {
        conn.give_back();
        None
    } else {
        Some(conn)
    };
    let body = Tracked::new(body, guard, conn, pool.cfg.timeouts.idle).boxed_unsync();
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn targets_join_base_rest_and_query() {
        assert_eq!(target("", "/x", None), "/x");
        assert_eq!(target("", "", None), "/");
        assert_eq!(target("/infer", "", None), "/infer");
        assert_eq!(target("/v1", "chat", Some("a=1")), "/v1/chat?a=1");
        assert_eq!(target("/v1", "/chat", None), "/v1/chat");
    }
}
