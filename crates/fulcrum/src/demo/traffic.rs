//! The demo's callers: requests at a steady rate to every pool through
//! the gateway's proxy listener (open loop: a slow instance does not slow
//! the callers down), and what became of them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Each pool's part of `--rps`.
const SHARES: [(&str, f64); 4] = [("asr", 0.3), ("llm", 0.3), ("tts", 0.2), ("vision", 0.2)];
/// Requests waiting for an answer at once, over all pools; a tick finding
/// none free sends nothing (counted as skipped).
const MAX_OUTSTANDING: u32 = 256;
/// A request not answered (to its last byte) by then counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The TTS texts callers ask for: every other request one of a few
/// popular ones (the cache answers them, its TTL being 15 s), the others
/// one of many (instances answer them).
const POPULAR: u64 = 8;
const RARE: u64 = 500;

/// Each pool's rate in requests per second, out of `total`.
fn split(total: f64) -> [(&'static str, f64); 4] {
    SHARES.map(|(pool, share)| (pool, total * share))
}

/// The `n`-th request of `pool`'s callers.
fn request(proxy: SocketAddr, pool: &str, n: u64) -> http::Request<Full<Bytes>> {
    let (method, path, kind, body) = match pool {
        "asr" => (
            http::Method::POST,
            "/asr/recognize".to_string(),
            "audio/wav",
            Bytes::from(vec![0u8; 4096]),
        ),
        // An LLM answers token by token: 8 events 30 ms apart.
        "llm" => (
            http::Method::GET,
            "/llm/sse?events=8&interval_ms=30".to_string(),
            "text/plain",
            Bytes::new(),
        ),
        "tts" => (
            http::Method::POST,
            "/tts/synthesize".to_string(),
            "application/json",
            Bytes::from(format!(
                r#"{{"text":"demo phrase {}","voice":"alto"}}"#,
                phrase(n)
            )),
        ),
        _ => (
            http::Method::POST,
            format!("/infer/{pool}"),
            "application/json",
            Bytes::from(format!(
                r#"{{"image_url":"http://camera-7/frame-{n}.jpg"}}"#
            )),
        ),
    };
    let mut req = http::Request::new(Full::new(body));
    *req.method_mut() = method;
    // Built from a socket address and fixed paths: always a valid URI.
    *req.uri_mut() = format!("http://{proxy}{path}")
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    if let Ok(v) = http::HeaderValue::from_str(kind) {
        req.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    req
}

/// Which TTS text the `n`-th request asks for (see [`POPULAR`]).
fn phrase(n: u64) -> u64 {
    if n.is_multiple_of(2) {
        n / 2 % POPULAR
    } else {
        POPULAR + n.wrapping_mul(7919) % RARE
    }
}

/// One pool's callers and their counts.
struct Lane {
    pool: &'static str,
    rate: f64,
    ok: AtomicU64,
    failed: AtomicU64,
    cache_hits: AtomicU64,
    skipped: AtomicU64,
}

/// Counts of one lane at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    ok: u64,
    failed: u64,
    cache_hits: u64,
    skipped: u64,
}

impl Lane {
    fn new(pool: &'static str, rate: f64) -> Arc<Lane> {
        Arc::new(Lane {
            pool,
            rate,
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    fn counts(&self) -> Counts {
        Counts {
            ok: self.ok.load(Relaxed),
            failed: self.failed.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
        }
    }
}

/// The callers of every pool.
pub(super) struct Traffic {
    lanes: Vec<Arc<Lane>>,
    tickers: Vec<JoinHandle<()>>,
    slots: Arc<Semaphore>,
    /// The counts at the last summary.
    last: Vec<Counts>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

impl Traffic {
    /// Starts sending `rps` requests a second, over every pool, to the
    /// gateway at `proxy`.
    pub fn start(proxy: SocketAddr, rps: f64) -> Traffic {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let slots = Arc::new(Semaphore::new(MAX_OUTSTANDING as usize));
        let lanes: Vec<Arc<Lane>> = split(rps)
            .into_iter()
            .map(|(pool, rate)| Lane::new(pool, rate))
            .collect();
        let tickers = lanes
            .iter()
            .map(|l| tokio::spawn(drive(l.clone(), client.clone(), proxy, slots.clone())))
            .collect();
        let last = vec![Counts::default(); lanes.len()];
        Traffic {
            lanes,
            tickers,
            slots,
            last,
        }
    }

    /// `traffic: 20 req/s (asr 6, llm 6, tts 4, vision 4)`.
    pub fn describe(&self) -> String {
        let total: f64 = self.lanes.iter().map(|l| l.rate).sum();
        let parts: Vec<String> = self
            .lanes
            .iter()
            .map(|l| format!("{} {}", l.pool, rate(l.rate)))
            .collect();
        format!("traffic: {} req/s ({})", rate(total), parts.join(", "))
    }

    /// What happened to the requests since the last summary, `over` ago.
    pub fn summary(&mut self, over: Duration) -> String {
        let now: Vec<Counts> = self.lanes.iter().map(|l| l.counts()).collect();
        let line = summarize(&self.lanes, &self.last, &now, over);
        self.last = now;
        line
    }

    /// Stops sending; requests already sent get their answers (at most
    /// [`REQUEST_TIMEOUT`]). Returns the totals since start.
    pub async fn stop(self) -> String {
        for t in &self.tickers {
            t.abort();
        }
        let _ =
            tokio::time::timeout(REQUEST_TIMEOUT, self.slots.acquire_many(MAX_OUTSTANDING)).await;
        let now: Vec<Counts> = self.lanes.iter().map(|l| l.counts()).collect();
        let sum = total(&now);
        let mut line = format!(
            "{} requests: {} answered, {} failed",
            sum.ok + sum.failed,
            sum.ok,
            sum.failed
        );
        if sum.skipped > 0 {
            line += &format!(", {} not sent (too many waiting)", sum.skipped);
        }
        line
    }
}

fn total(counts: &[Counts]) -> Counts {
    counts.iter().fold(Counts::default(), |a, c| Counts {
        ok: a.ok + c.ok,
        failed: a.failed + c.failed,
        cache_hits: a.cache_hits + c.cache_hits,
        skipped: a.skipped + c.skipped,
    })
}

/// `traffic, last 15s: 300 requests (20.0/s), 0 failed; asr 90, llm 90,
/// tts 60 (55% from the cache), vision 60`.
fn summarize(lanes: &[Arc<Lane>], before: &[Counts], now: &[Counts], over: Duration) -> String {
    let delta: Vec<Counts> = before
        .iter()
        .zip(now)
        .map(|(b, n)| Counts {
            ok: n.ok - b.ok,
            failed: n.failed - b.failed,
            cache_hits: n.cache_hits - b.cache_hits,
            skipped: n.skipped - b.skipped,
        })
        .collect();
    let sum = total(&delta);
    let done = sum.ok + sum.failed;
    let parts: Vec<String> = lanes
        .iter()
        .zip(&delta)
        .map(|(l, d)| {
            let n = d.ok + d.failed;
            if d.cache_hits > 0 {
                format!(
                    "{} {n} ({}% from the cache)",
                    l.pool,
                    d.cache_hits * 100 / n.max(1)
                )
            } else {
                format!("{} {n}", l.pool)
            }
        })
        .collect();
    let mut line = format!(
        "traffic, last {}s: {done} requests ({:.1}/s), {} failed; {}",
        over.as_secs(),
        done as f64 / over.as_secs_f64().max(0.001),
        sum.failed,
        parts.join(", ")
    );
    if sum.skipped > 0 {
        line += &format!("; {} not sent (too many waiting)", sum.skipped);
    }
    line
}

/// `6`, `0.5`: a rate without needless decimals.
fn rate(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// Sends `lane`'s requests, one every `1 / rate` seconds, each in its own task.
async fn drive(lane: Arc<Lane>, client: HttpClient, proxy: SocketAddr, slots: Arc<Semaphore>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / lane.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            lane.skipped.fetch_add(1, Relaxed);
            continue;
        };
        let req = request(proxy, lane.pool, n);
        let (client, lane) = (client.clone(), lane.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, send(&client, req)).await {
                Ok(Some(hit)) => {
                    lane.ok.fetch_add(1, Relaxed);
                    if hit {
                        lane.cache_hits.fetch_add(1, Relaxed);
                    }
                }
                _ => {
                    lane.failed.fetch_add(1, Relaxed);
                }
            }
            drop(slot);
        });
    }
}

/// Sends `req` and reads its answer to the end (an LLM's whole stream);
/// `Some(answered from the cache)` for a 2xx answer, `None` otherwise.
async fn send(client: &HttpClient, req: http::Request<Full<Bytes>>) -> Option<bool> {
    let resp = client.request(req).await.ok()?;
    let ok = resp.status().is_success();
    let hit = resp
        .headers()
        .get("x-cache")
        .is_some_and(|v| v.as_bytes() == b"HIT");
    resp.into_body().collect().await.ok()?;
    ok.then_some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_split_over_every_pool_and_adds_up() {
        let parts = split(20.0);
        assert_eq!(
            parts.map(|(p, _)| p),
            ["asr", "llm", "tts", "vision"],
            "every pool gets traffic"
        );
        let sum: f64 = parts.iter().map(|(_, r)| r).sum();
        assert!((sum - 20.0).abs() < 1e-9, "{sum}");
        assert!(parts.iter().all(|(_, r)| *r > 0.0));
        assert_eq!(parts.map(|(_, r)| rate(r)), ["6", "6", "4", "4"]);
        assert_eq!(rate(0.3), "0.3");
    }

    #[test]
    fn tts_texts_repeat_so_the_cache_has_something_to_hit_and_instances_work_too() {
        // 4 requests a second: 60 within the cache's 15 s TTL.
        let texts: Vec<u64> = (0..60).map(phrase).collect();
        let distinct: std::collections::HashSet<u64> = texts.iter().copied().collect();
        let repeats = texts.len() - distinct.len();
        assert!((20..=30).contains(&repeats), "{repeats} of 60 repeat");
        let popular = texts.iter().filter(|&&t| t < POPULAR).count();
        assert_eq!(popular, 30);
    }

    #[test]
    fn every_pool_has_its_request() {
        let proxy: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let r = request(proxy, "llm", 0);
        assert_eq!(
            r.uri().to_string(),
            "http://127.0.0.1:8080/llm/sse?events=8&interval_ms=30"
        );
        assert_eq!(request(proxy, "vision", 3).uri().path(), "/infer/vision");
        assert_eq!(request(proxy, "asr", 3).method(), http::Method::POST);
        assert_eq!(request(proxy, "tts", 3).uri().path(), "/tts/synthesize");
    }

    #[test]
    fn a_summary_counts_what_happened_since_the_last_one() {
        let lanes: Vec<Arc<Lane>> = split(10.0)
            .into_iter()
            .map(|(pool, rate)| Lane::new(pool, rate))
            .collect();
        let c = |ok, failed, cache_hits| Counts {
            ok,
            failed,
            cache_hits,
            skipped: 0,
        };
        let before = [c(10, 0, 0), c(10, 0, 0), c(10, 0, 5), c(10, 0, 0)];
        let now = [c(40, 1, 0), c(40, 0, 0), c(30, 0, 15), c(30, 0, 0)];
        assert_eq!(
            summarize(&lanes, &before, &now, Duration::from_secs(10)),
            "traffic, last 10s: 101 requests (10.1/s), 1 failed; asr 31, llm 30, tts 20 (50% from the cache), vision 20"
        );
    }
}
