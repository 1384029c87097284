//! Response compression through the whole gateway: a route with
//! `compression:` in front of the mock, answers decoded with flate2 and
//! zstd and compared byte for byte with the answer sent as it is.

use crate::common::*;
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use std::io::Write;
use std::time::{Duration, Instant};

/// A gateway with one pool on `url`: `/` compresses (`compression`),
/// `/plain/` does not.
fn yaml(url: &str, pool_extra: &str, compression: &str) -> String {
    format!(
        "pools: {{ p: {{ {pool_extra}instances: [ {{ endpoint: \"{url}\" }} ] }} }}\n\
         routes:\n  - {{ path_prefix: /, pool: p, compression: {compression} }}\n  \
         - {{ path_prefix: /plain/, pool: p, strip_prefix: true }}\n"
    )
}

/// The mock's chat completion of `tokens` tokens: a JSON answer with a
/// `Content-Length` (1500 tokens make about 11 KiB).
const CHAT: &[u8] = br#"{"model":"m","max_tokens":1500}"#;

async fn chat(c: &TestClient, url: &str, accept: Option<&str>) -> Resp {
    let mut h = vec![("content-type", "application/json")];
    h.extend(accept.map(|a| ("accept-encoding", a)));
    send(c, Method::POST, url, CHAT, &h).await
}

fn decode(coding: &str, data: &[u8]) -> Bytes {
    Bytes::from(match coding {
        "gzip" => {
            let mut d = flate2::write::GzDecoder::new(Vec::new());
            d.write_all(data).unwrap();
            d.finish().unwrap()
        }
        "zstd" => zstd::stream::decode_all(data).unwrap(),
        other => panic!("unexpected coding {other}"),
    })
}

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_kib_json_answer_is_compressed_as_asked_and_decodes_identically() {
    let m = mock("m").await;
    let gw = gateway(&yaml(&m.url(), "", "true")).await;
    let c = client();
    let url = format!("http://{}/v1/chat/completions", gw.proxy_addr);
    let plain = chat(&c, &url, None).await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.len() >= 10 << 10, "{} bytes", plain.body.len());
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary"), Some("accept-encoding"));
    assert_eq!(
        header(&plain, "content-length"),
        Some(plain.body.len().to_string().as_str())
    );
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("zstd;q=0.5, gzip", "gzip"),
    ] {
        let r = chat(&c, &url, Some(accept)).await;
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-encoding"), Some(coding), "{accept}");
        assert_eq!(header(&r, "vary"), Some("accept-encoding"));
        assert_eq!(header(&r, "content-length"), None);
        assert!(
            r.body.len() * 2 < plain.body.len(),
            "{coding}: {} of {} bytes",
            r.body.len(),
            plain.body.len()
        );
        assert_eq!(decode(coding, &r.body), plain.body, "{coding}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_audio_and_unasked_answers_go_out_as_they_are() {
    let m = mock("m").await;
    let gw = gateway(&yaml(&m.url(), "", "{ algorithms: [gzip] }")).await;
    let c = client();
    let gzip = [("accept-encoding", "gzip")];

    // The mock's description of a GET: JSON well under 1 KiB.
    let url = format!("http://{}/small", gw.proxy_addr);
    let r = send(&c, Method::GET, &url, b"", &gzip).await;
    assert!(r.body.len() < 1024, "{} bytes", r.body.len());
    assert_eq!(r.json()["path"], "/small");
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), None);

    // 10 KiB of audio, streamed back by the mock's echo route.
    let audio: Vec<u8> = (0..10 << 10).map(|i| (i % 251) as u8).collect();
    let url = format!("http://{}/echo", gw.proxy_addr);
    let h = [("accept-encoding", "gzip"), ("content-type", "audio/wav")];
    let r = send(&c, Method::POST, &url, &audio, &h).await;
    assert_eq!(header(&r, "content-type"), Some("audio/wav"));
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(r.body, audio);

    // Only the coding the route offers.
    let url = format!("http://{}/v1/chat/completions", gw.proxy_addr);
    let r = chat(&c, &url, Some("zstd")).await;
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), Some("accept-encoding"));

    // A route without compression leaves everything alone.
    let url = format!("http://{}/plain/v1/chat/completions", gw.proxy_addr);
    let r = chat(&c, &url, Some("gzip")).await;
    assert!(r.body.len() >= 10 << 10);
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(header(&r, "vary"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_the_answer_as_it_was_and_each_hit_is_compressed_as_asked() {
    let m = mock("m").await;
    let cache = "cache: { ttl: 1h, max_size: 1MiB, methods: [POST] }, ";
    let gw = gateway(&yaml(&m.url(), cache, "true")).await;
    let c = client();
    let url = format!("http://{}/v1/chat/completions", gw.proxy_addr);
    let first = chat(&c, &url, Some("gzip")).await;
    assert_eq!(header(&first, "x-cache"), Some("MISS"));
    assert_eq!(header(&first, "content-encoding"), Some("gzip"));
    let plain = chat(&c, &url, None).await;
    assert_eq!(header(&plain, "x-cache"), Some("HIT"));
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(decode("gzip", &first.body), plain.body);
    let z = chat(&c, &url, Some("zstd")).await;
    assert_eq!(header(&z, "x-cache"), Some("HIT"));
    assert_eq!(header(&z, "content-encoding"), Some("zstd"));
    assert_eq!(header(&z, "vary"), Some("accept-encoding"));
    assert_eq!(decode("zstd", &z.body), plain.body);
    assert_eq!(
        m.stats().requests,
        1,
        "both later answers came from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_through_a_compressing_route_delivers_each_event_as_it_is_sent() {
    let m = mock("m").await;
    let gw = gateway(&yaml(&m.url(), "", "true")).await;
    let req = http::Request::get(format!(
        "http://{}/sse?events=10&interval_ms=200",
        gw.proxy_addr
    ))
    .header("accept-encoding", "gzip")
    .body(http_body_util::Full::new(Bytes::new()))
    .unwrap();
    let sent = Instant::now();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut body = resp.into_body();
    let mut gz = flate2::write::GzDecoder::new(Vec::new());
    let mut text = String::new();
    // When each complete event (ending in a blank line) could be decoded.
    let mut arrived = vec![];
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        gz.write_all(&data).unwrap();
        gz.flush().unwrap();
        text.push_str(std::str::from_utf8(&std::mem::take(gz.get_mut())).unwrap());
        while let Some(end) = text.find("\n\n") {
            arrived.push((sent.elapsed(), text[..end].to_string()));
            text.drain(..end + 2);
        }
    }
    assert!(text.is_empty(), "a partial event was left: {text:?}");
    let events: Vec<&str> = arrived.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(events.len(), 11, "10 events and [DONE]: {events:?}");
    assert!(events[0].contains("\"i\":0") && events[10] == "data: [DONE]");
    // The mock sends the first event at once, then one every 200 ms: each
    // must be decodable within 50 ms of its sending, not held for a block.
    assert!(
        arrived[0].0 < Duration::from_millis(200),
        "first event after {:?}",
        arrived[0].0
    );
    for w in arrived.windows(2).take(9) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap > Duration::from_millis(150) && gap < Duration::from_millis(250),
            "{gap:?} between {:?} and {:?}",
            w[0].1,
            w[1].1
        );
    }
}
