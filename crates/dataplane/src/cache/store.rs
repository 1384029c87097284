//! A pool's response cache (`cache: { ttl, max_size, max_entry_size, methods }`).
//!
//! * Key: SHA-256 over method, path, query and the SHA-256 of the request
//!   body (the voice seed keys TTS audio on URI and text). Only requests
//!   whose body is at most [`MAX_KEYED_BODY`](super::key::MAX_KEYED_BODY) are looked up.
//! * Stored: complete `200` answers no larger than `max_entry_size`, unless
//!   the response says `no-store`, `private`, `no-cache`, `max-age=0`,
//!   `Vary: *` or sets a cookie; `s-maxage`/`max-age` shorten `ttl`.
//!   A request's `Cache-Control: no-store` bypasses the cache, `no-cache`
//!   skips the lookup (the fresh answer is stored).
//! * Identical concurrent misses are collapsed: the first goes upstream,
//!   the others wait for its answer (at most the pool's
//!   `timeouts.response_header`) and are served from the cache; if the
//!   answer could not be stored, each goes upstream itself.
//! * Bounded by bytes (body + headers), least recently used evicted first
//!   (moka with the LRU policy), with hit/miss/store/eviction counters.
//! * Other `Vary` headers are honoured: the request values they name are
//!   stored with the entry and must match for a hit.

use super::key::Key;
use super::rules::{storable_for, vary_values, Directives};
use super::tee::{Keep, Tee};
use crate::http::body::{full, ProxyBody};
use bytes::Bytes;
use fulcrum_config::CacheConfig;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response};
use http_body::Body;
use http_body_util::BodyExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest an identical request waits for the one filling the cache
/// before going upstream itself (nginx's `proxy_cache_lock_timeout`).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// One stored response.
#[derive(Debug)]
pub struct Entry {
    headers: HeaderMap,
    body: Bytes,
    stored_ms: u64,
    expires_ms: u64,
    vary: Vec<(HeaderName, Option<HeaderValue>)>,
}

impl Entry {
    fn weight(&self) -> u32 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        (self.body.len() + h + 128).min(u32::MAX as usize) as u32
    }

    fn matches(&self, req: &HeaderMap) -> bool {
        self.vary.iter().all(|(n, v)| req.get(n) == v.as_ref())
    }
}

/// Counters and size of one pool's cache, for the stats.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

/// Identical requests in flight: the leader's completion wakes the others.
type Flights = Mutex<HashMap<Key, tokio::sync::watch::Sender<()>>>;

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    evictions: Arc<AtomicU64>,
}

pub struct ResponseCache {
    cfg: CacheConfig,
    store: moka::sync::Cache<Key, Arc<Entry>>,
    flights: Flights,
    counters: Counters,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("cfg", &self.cfg)
            .field("entries", &self.store.entry_count())
            .finish()
    }
}

/// What a lookup found.
pub enum Lookup {
    /// Serve this.
    Hit(Response<ProxyBody>),
    /// Go upstream; [`Fill::wrap`] the answer to store it.
    Miss(Fill),
}

impl ResponseCache {
    pub fn new(cfg: CacheConfig) -> Arc<Self> {
        let counters = Counters::default();
        let evictions = counters.evictions.clone();
        let store = moka::sync::Cache::builder()
            .max_capacity(cfg.max_size)
            .weigher(|_k: &Key, e: &Arc<Entry>| e.weight())
            .time_to_live(cfg.ttl)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evictions.fetch_add(1, Relaxed);
                }
            })
            .build();
        Arc::new(Self {
            cfg,
            store,
            flights: Default::default(),
            counters,
        })
    }

    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// Whether a request with this method and headers may use the cache.
    pub fn applies(&self, method: &Method, req: &HeaderMap) -> bool {
        self.cfg.methods.contains(method) && !Directives::parse(req).no_store
    }

    fn fresh(&self, key: &Key, req: &HeaderMap, now_ms: u64) -> Option<Arc<Entry>> {
        let e = self.store.get(key)?;
        if now_ms >= e.expires_ms {
            self.store.invalidate(key);
            return None;
        }
        e.matches(req).then_some(e)
    }

    fn hit(&self, e: &Entry, now_ms: u64) -> Response<ProxyBody> {
        self.counters.hits.fetch_add(1, Relaxed);
        let mut resp = Response::new(full(e.body.clone()));
        *resp.headers_mut() = e.headers.clone();
        let h = resp.headers_mut();
        h.insert(X_CACHE, HeaderValue::from_static("HIT"));
        h.insert(
            header::AGE,
            HeaderValue::from(now_ms.saturating_sub(e.stored_ms) / 1000),
        );
        resp
    }

    /// Looks `key` up; on a miss, becomes the request that fills it, or
    /// waits (at most `wait`) for the identical request already doing so.
    pub async fn lookup(
        self: &Arc<Self>,
        key: Key,
        req: &HeaderMap,
        now: impl Fn() -> u64,
        wait: Duration,
    ) -> Lookup {
        let no_cache = Directives::parse(req).no_cache;
        let mut waited = false;
        loop {
            if !no_cache {
                if let Some(e) = self.fresh(&key, req, now()) {
                    return Lookup::Hit(self.hit(&e, now()));
                }
            }
            let rx = {
                let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
                match flights.get(&key) {
                    Some(tx) if !waited => Some(tx.subscribe()),
                    Some(_) => None,
                    None => {
                        flights.insert(key, tokio::sync::watch::channel(()).0);
                        self.counters.misses.fetch_add(1, Relaxed);
                        return Lookup::Miss(self.fill(key, req, true));
                    }
                }
            };
            match rx {
                Some(mut rx) => {
                    // Woken when the leader's flight ends (its sender is dropped).
                    let _ = tokio::time::timeout(wait, rx.changed()).await;
                    waited = true;
                }
                None => {
                    // Waited once and someone else leads now: go upstream.
                    self.counters.misses.fetch_add(1, Relaxed);
                    return Lookup::Miss(self.fill(key, req, false));
                }
            }
        }
    }

    fn fill(self: &Arc<Self>, key: Key, req: &HeaderMap, leads: bool) -> Fill {
        Fill {
            cache: self.clone(),
            key,
            leads,
            req_headers: req.clone(),
        }
    }

    fn store(&self, key: Key, e: Entry) {
        self.counters.stores.fetch_add(1, Relaxed);
        self.store.insert(key, Arc::new(e));
    }

    fn land(&self, key: &Key) {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        // Dropping the sender wakes every waiter.
        flights.remove(key);
    }

    pub fn stats(&self) -> CacheStats {
        self.store.run_pending_tasks();
        CacheStats {
            hits: self.counters.hits.load(Relaxed),
            misses: self.counters.misses.load(Relaxed),
            stores: self.counters.stores.load(Relaxed),
            evictions: self.counters.evictions.load(Relaxed),
            entries: self.store.entry_count(),
            bytes: self.store.weighted_size(),
            max_bytes: self.cfg.max_size,
        }
    }
}

/// An entry waiting for its body: stored when the tee saw the whole body.
struct Pending {
    fill: Fill,
    entry: Entry,
}

impl Keep for Pending {
    fn keep(self, body: Bytes) {
        let Pending { fill, mut entry } = self;
        entry.body = body;
        fill.cache.store(fill.key, entry);
    }
}

/// A miss on its way upstream. Dropping it (error, not storable, caller
/// gone) ends the flight so waiters go on.
pub struct Fill {
    cache: Arc<ResponseCache>,
    key: Key,
    leads: bool,
    req_headers: HeaderMap,
}

impl Drop for Fill {
    fn drop(&mut self) {
        if self.leads {
            self.cache.land(&self.key);
        }
    }
}

impl Fill {
    /// Marks `resp` as a miss and, if it may be stored, tees its body into
    /// the cache as it streams to the caller.
    pub fn wrap(self, resp: Response<ProxyBody>, now_ms: u64) -> Response<ProxyBody> {
        let (mut parts, body) = resp.into_parts();
        parts
            .headers
            .insert(X_CACHE, HeaderValue::from_static("MISS"));
        let authorized = self.req_headers.contains_key(header::AUTHORIZATION);
        let Some(ttl) = storable_for(&self.cache.cfg, parts.status, &parts.headers, authorized)
        else {
            return Response::from_parts(parts, body);
        };
        let limit = self.cache.cfg.max_entry_size.min(u32::MAX as u64) as usize;
        if body.size_hint().lower() as usize > limit {
            return Response::from_parts(parts, body);
        }
        let mut headers = parts.headers.clone();
        headers.remove(X_CACHE);
        headers.remove(crate::http::headers::X_REQUEST_ID);
        let vary = vary_values(&parts.headers, &self.req_headers);
        let entry = Entry {
            headers,
            body: Bytes::new(),
            stored_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl.as_millis() as u64),
            vary,
        };
        let tee = Tee::new(body, limit, Pending { fill: self, entry });
        Response::from_parts(parts, tee.boxed_unsync())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::key;
    use crate::http::body::BoxError;
    use http::{StatusCode, Uri};
    use http_body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    fn cfg() -> CacheConfig {
        CacheConfig {
            ttl: Duration::from_secs(60),
            max_size: 10_000,
            max_entry_size: 4_000,
            methods: vec![Method::GET, Method::POST],
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ok(body: &'static str, h: &[(&'static str, &'static str)]) -> Response<ProxyBody> {
        let mut r = Response::new(full(body));
        *r.headers_mut() = headers(h);
        r
    }

    async fn drain(r: Response<ProxyBody>) -> Bytes {
        r.into_body().collect().await.unwrap().to_bytes()
    }

    async fn miss(c: &Arc<ResponseCache>, k: Key, req: &HeaderMap) -> Fill {
        match c.lookup(k, req, || 1_000, Duration::from_secs(1)).await {
            Lookup::Miss(f) => f,
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn the_key_covers_method_path_query_and_body() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        let base = key(&Method::POST, b"h", 0, &u("/tts?v=1"), b"hello");
        assert_eq!(base, key(&Method::POST, b"h", 0, &u("/tts?v=1"), b"hello"));
        for other in [
            key(&Method::GET, b"h", 0, &u("/tts?v=1"), b"hello"),
            key(&Method::POST, b"h", 0, &u("/tts?v=2"), b"hello"),
            key(&Method::POST, b"h", 0, &u("/tt?v=1"), b"hello"),
            key(&Method::POST, b"h", 0, &u("/tts?v=1"), b"hellO"),
            key(&Method::POST, b"h", 0, &u("/tts"), b"hello"),
            key(&Method::POST, b"other", 0, &u("/tts?v=1"), b"hello"),
            key(&Method::POST, b"h", 3, &u("/tts?v=1"), b"hello"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn only_storable_answers_are_kept() {
        let c = cfg();
        let s = |st: u16, h: &[(&'static str, &'static str)]| {
            storable_for(&c, StatusCode::from_u16(st).unwrap(), &headers(h), false)
        };
        assert_eq!(s(200, &[]), Some(Duration::from_secs(60)));
        assert_eq!(
            s(200, &[("cache-control", "public, max-age=5")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            s(200, &[("cache-control", "max-age=5, s-maxage=20")]),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            s(200, &[("cache-control", "max-age=3600")]),
            Some(Duration::from_secs(60))
        );
        for h in [
            &[("cache-control", "no-store")][..],
            &[("cache-control", "private")],
            &[("cache-control", "No-Cache")],
            &[("cache-control", "max-age=0")],
            &[("set-cookie", "a=b")],
            &[("vary", "accept, *")],
        ] {
            assert_eq!(s(200, h), None, "{h:?}");
        }
        // An answer to a request with credentials is shared only if it says so.
        let auth = |h: &[(&'static str, &'static str)]| {
            storable_for(&c, StatusCode::OK, &headers(h), true)
        };
        assert_eq!(auth(&[]), None);
        assert_eq!(auth(&[("cache-control", "max-age=5")]), None);
        for h in ["public", "s-maxage=5", "must-revalidate"] {
            assert!(auth(&[("cache-control", h)]).is_some(), "{h}");
        }
        // A Vary name that is no header name cannot be matched.
        assert_eq!(s(200, &[("vary", "x-user id")]), None);
        assert!(s(200, &[("vary", "accept-language, accept")]).is_some());
        for st in [201, 204, 206, 301, 404, 500, 503] {
            assert_eq!(s(st, &[]), None, "{st}");
        }
    }

    #[tokio::test]
    async fn a_complete_answer_is_stored_and_served_with_age() {
        let c = ResponseCache::new(cfg());
        let req = HeaderMap::new();
        let k = [1; 32];
        let f = miss(&c, k, &req).await;
        let r = f.wrap(ok("audio", &[("content-type", "audio/wav")]), 1_000);
        assert_eq!(r.headers()[X_CACHE], "MISS");
        assert_eq!(drain(r).await, "audio");
        match c.lookup(k, &req, || 4_500, Duration::from_secs(1)).await {
            Lookup::Hit(r) => {
                assert_eq!(r.headers()[X_CACHE], "HIT");
                assert_eq!(r.headers()[header::AGE], "3");
                assert_eq!(r.headers()[header::CONTENT_TYPE], "audio/wav");
                assert_eq!(drain(r).await, "audio");
            }
            Lookup::Miss(_) => panic!("expected a hit"),
        }
        // Expired by the clock: a miss again.
        let _f = match c.lookup(k, &req, || 61_001, Duration::from_secs(1)).await {
            Lookup::Miss(f) => f,
            Lookup::Hit(_) => panic!("expired entry served"),
        };
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.stores), (1, 2, 1));
    }

    #[tokio::test]
    async fn a_body_cut_short_or_too_large_is_not_stored() {
        let c = ResponseCache::new(cfg());
        let req = HeaderMap::new();
        // Too large for max_entry_size.
        let big = "x".repeat(5_000);
        let f = miss(&c, [2; 32], &req).await;
        let body = http_body_util::StreamBody::new(futures_iter(vec![
            Ok(Frame::data(Bytes::from(big[..3_000].to_string()))),
            Ok(Frame::data(Bytes::from(big[3_000..].to_string()))),
        ]));
        let r = f.wrap(Response::new(body.boxed_unsync()), 0);
        assert_eq!(drain(r).await.len(), 5_000, "the caller still gets it all");
        // Broken half-way.
        let f = miss(&c, [3; 32], &req).await;
        let body = http_body_util::StreamBody::new(futures_iter(vec![
            Ok(Frame::data(Bytes::from_static(b"half"))),
            Err(BoxError::from("reset")),
        ]));
        let r = f.wrap(Response::new(body.boxed_unsync()), 0);
        assert!(r.into_body().collect().await.is_err());
        assert_eq!(c.stats().stores, 0);
        assert!(matches!(
            c.lookup([3; 32], &req, || 0, Duration::from_secs(1)).await,
            Lookup::Miss(_)
        ));
    }

    #[tokio::test]
    async fn vary_and_request_directives_are_honoured() {
        let c = ResponseCache::new(cfg());
        let fr = headers(&[("accept-language", "fr")]);
        let f = miss(&c, [4; 32], &fr).await;
        drain(f.wrap(ok("bonjour", &[("vary", "Accept-Language")]), 0)).await;
        assert!(matches!(
            c.lookup([4; 32], &fr, || 0, Duration::from_secs(1)).await,
            Lookup::Hit(_)
        ));
        let en = headers(&[("accept-language", "en")]);
        assert!(matches!(
            c.lookup([4; 32], &en, || 0, Duration::from_secs(1)).await,
            Lookup::Miss(_)
        ));
        // no-cache: not served from the cache (but may refresh it).
        let nc = headers(&[("accept-language", "fr"), ("cache-control", "no-cache")]);
        assert!(matches!(
            c.lookup([4; 32], &nc, || 0, Duration::from_secs(1)).await,
            Lookup::Miss(_)
        ));
        assert!(!c.applies(&Method::GET, &headers(&[("cache-control", "no-store")])));
        assert!(!c.applies(&Method::PUT, &HeaderMap::new()));
        assert!(c.applies(&Method::POST, &HeaderMap::new()));
    }

    #[tokio::test]
    async fn identical_misses_wait_for_the_first_one() {
        let c = ResponseCache::new(cfg());
        let req = HeaderMap::new();
        let leader = miss(&c, [5; 32], &req).await;
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    match c
                        .lookup([5; 32], &HeaderMap::new(), || 0, Duration::from_secs(30))
                        .await
                    {
                        Lookup::Hit(r) => drain(r).await,
                        Lookup::Miss(_) => Bytes::from_static(b"went upstream"),
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        drain(leader.wrap(ok("one answer", &[]), 0)).await;
        for w in waiters {
            assert_eq!(w.await.unwrap(), "one answer");
        }
        let s = c.stats();
        assert_eq!((s.misses, s.hits, s.stores), (1, 5, 1));

        // A leader whose answer cannot be stored lets the waiters go upstream.
        let leader = miss(&c, [6; 32], &req).await;
        let c2 = c.clone();
        let w = tokio::spawn(async move {
            matches!(
                c2.lookup([6; 32], &HeaderMap::new(), || 0, Duration::from_secs(30))
                    .await,
                Lookup::Miss(_)
            )
        });
        tokio::task::yield_now().await;
        let mut r = ok("busy", &[]);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        drain(leader.wrap(r, 0)).await;
        assert!(w.await.unwrap());
    }

    #[tokio::test]
    async fn an_answer_with_trailers_is_not_stored() {
        let c = ResponseCache::new(cfg());
        let req = HeaderMap::new();
        let f = miss(&c, [11; 32], &req).await;
        let mut tr = HeaderMap::new();
        tr.insert("grpc-status", HeaderValue::from_static("0"));
        let body = http_body_util::StreamBody::new(futures_iter(vec![
            Ok(Frame::data(Bytes::from_static(b"x"))),
            Ok(Frame::trailers(tr)),
        ]));
        let got = f
            .wrap(Response::new(body.boxed_unsync()), 0)
            .into_body()
            .collect()
            .await;
        assert!(got.unwrap().trailers().is_some(), "the caller gets them");
        assert_eq!(c.stats().stores, 0);
    }

    /// A body that never ends.
    struct Never;
    impl Body for Never {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identical_requests_wait_at_most_the_lock_timeout_for_a_slow_leader() {
        let c = ResponseCache::new(cfg());
        let req = HeaderMap::new();
        let leader = miss(&c, [9; 32], &req).await;
        let _resp = leader.wrap(Response::new(Never.boxed_unsync()), 0);
        let t0 = tokio::time::Instant::now();
        let r = c.lookup([9; 32], &req, || 0, LOCK_TIMEOUT).await;
        assert!(matches!(r, Lookup::Miss(_)));
        assert_eq!(t0.elapsed(), LOCK_TIMEOUT);
    }

    #[test]
    fn the_store_is_bounded_by_bytes_lru() {
        let c = ResponseCache::new(CacheConfig {
            max_size: 3_000,
            ..cfg()
        });
        let entry = |n: usize| Entry {
            headers: HeaderMap::new(),
            body: Bytes::from(vec![0u8; n]),
            stored_ms: 0,
            expires_ms: u64::MAX,
            vary: vec![],
        };
        for i in 0..10u8 {
            c.store([i; 32], entry(800));
            c.store.run_pending_tasks();
            // Touch the first entry so it stays the most recently used.
            let _ = c.store.get(&[0; 32]);
        }
        let s = c.stats();
        assert!(s.bytes <= 3_000, "{s:?}");
        assert!(s.evictions >= 7, "{s:?}");
        assert!(c.store.get(&[0; 32]).is_some(), "recently used entry kept");
        assert!(
            c.store.get(&[1; 32]).is_none(),
            "least recently used evicted"
        );
    }

    fn futures_iter(
        v: Vec<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, BoxError>> + Unpin {
        struct Iter<I>(I);
        impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
            type Item = I::Item;
            fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
                Poll::Ready(self.0.next())
            }
        }
        Iter(v.into_iter())
    }
}
