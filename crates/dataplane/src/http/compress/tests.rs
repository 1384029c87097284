use super::body::{Compressed, MAX_INPUT_PER_FRAME};
use super::*;
use crate::http::body::{full, BoxError};
use bytes::Bytes;
use http_body::Frame;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use ContentCoding::{Gzip, Zstd};

fn rules() -> Arc<Compression> {
    Arc::new(Compression {
        types: vec!["application/json".into(), "text/*".into()],
        min_size: 1024,
        algorithms: vec![Zstd, Gzip],
    })
}

fn request(accept: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(a) = accept {
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(a).unwrap());
    }
    h
}

fn plan(accept: Option<&str>) -> Option<Plan> {
    Some(Plan::new(&rules(), &Method::GET, &request(accept)))
}

/// A JSON answer of `n` bytes with `Content-Length`, plus `extra` headers.
fn answer(n: usize, extra: &[(&str, &str)]) -> Response<ProxyBody> {
    let body = json(n);
    let mut r = Response::new(full(body.clone()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    for (k, v) in extra {
        h.append(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    r
}

fn json(n: usize) -> Bytes {
    let mut s = String::from("{\"text\":\"");
    let mut i = 0;
    while s.len() + 2 < n {
        s.push_str(["tok ", "en ", "word "][i % 3]);
        i += 1;
    }
    s.truncate(n - 2);
    s.push_str("\"}");
    Bytes::from(s)
}

fn coding_of(r: &Response<ProxyBody>) -> Option<&str> {
    r.headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap())
}

/// A whole compressed body, decoded.
fn decode(coding: ContentCoding, data: &[u8]) -> Vec<u8> {
    Incremental::new(coding).feed(data)
}

async fn body_of(r: Response<ProxyBody>) -> Bytes {
    r.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn an_eligible_answer_is_compressed_as_the_caller_asks_and_decodes_identically() {
    for (accept, want) in [("gzip", Gzip), ("zstd", Zstd), ("gzip, zstd", Zstd)] {
        let r = maybe(plan(Some(accept)), answer(10 << 10, &[]));
        assert_eq!(coding_of(&r), Some(want.name()));
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        assert!(!r.headers().contains_key(header::CONTENT_LENGTH));
        let compressed = body_of(r).await;
        assert!(
            compressed.len() < 5 << 10,
            "{want:?}: {} bytes",
            compressed.len()
        );
        assert_eq!(decode(want, &compressed), json(10 << 10));
    }
}

#[tokio::test]
async fn without_an_accepted_coding_the_answer_is_as_it_was_but_varies() {
    for accept in [
        None,
        Some("br"),
        Some("gzip;q=0, zstd;q=0"),
        Some("identity"),
    ] {
        let r = maybe(plan(accept), answer(2048, &[]));
        assert_eq!(coding_of(&r), None, "{accept:?}");
        assert_eq!(r.headers()[header::VARY], "accept-encoding");
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "2048");
        assert_eq!(body_of(r).await, json(2048));
    }
}

#[test]
fn a_route_without_compression_leaves_the_answer_alone() {
    let r = maybe(None, answer(4096, &[]));
    assert!(coding_of(&r).is_none() && !r.headers().contains_key(header::VARY));
}

/// Whether `r` would be compressed for a caller accepting gzip, and
/// whether it got `Vary`.
fn decided(r: Response<ProxyBody>) -> (bool, bool) {
    let r = maybe(plan(Some("gzip")), r);
    (
        coding_of(&r) == Some("gzip"),
        r.headers().contains_key(header::VARY),
    )
}

#[test]
fn only_listed_types_are_compressed() {
    let typed = |ct: &'static str| {
        let mut r = answer(4096, &[]);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        decided(r).0
    };
    assert!(typed("application/json"));
    assert!(typed("Application/JSON; charset=utf-8"));
    assert!(typed("text/event-stream"), "text/* covers it");
    for ct in [
        "audio/mpeg",
        "audio/wav",
        "image/png",
        "application/octet-stream",
        "application/zip",
        "application/jsonx",
        "text",
        "",
    ] {
        assert!(!typed(ct), "{ct}");
    }
    let mut r = answer(4096, &[]);
    r.headers_mut().remove(header::CONTENT_TYPE);
    assert_eq!(decided(r), (false, false), "no type, no compression");
}

#[test]
fn a_known_length_below_min_size_is_sent_as_it_is() {
    assert_eq!(decided(answer(1023, &[])), (false, false));
    assert_eq!(decided(answer(1024, &[])), (true, true));
    let mut r = answer(100, &[]);
    r.headers_mut().remove(header::CONTENT_LENGTH);
    assert_eq!(
        decided(r),
        (false, false),
        "the body's exact size counts too"
    );
}

#[test]
fn an_answer_of_unknown_length_is_compressed() {
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let mut r = Response::new(Chan(rx).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    assert_eq!(decided(r), (true, true));
}

#[test]
fn what_must_not_be_transformed_is_not() {
    for extra in [
        ("content-encoding", "br"),
        ("content-encoding", "identity"),
        ("cache-control", "public, No-Transform"),
        ("content-range", "bytes 0-4095/8192"),
    ] {
        assert_eq!(decided(answer(4096, &[extra])), (false, false), "{extra:?}");
    }
    for status in [
        StatusCode::PARTIAL_CONTENT,
        StatusCode::NO_CONTENT,
        StatusCode::NOT_MODIFIED,
        StatusCode::SWITCHING_PROTOCOLS,
    ] {
        let mut r = answer(4096, &[]);
        *r.status_mut() = status;
        assert_eq!(decided(r), (false, false), "{status}");
    }
    let mut r = answer(4096, &[]);
    *r.body_mut() = crate::http::body::empty();
    assert_eq!(decided(r), (false, false), "no body");
}

#[test]
fn errors_and_other_statuses_with_a_body_are_compressed() {
    let mut r = answer(4096, &[]);
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(decided(r), (true, true));
}

#[test]
fn head_gets_vary_but_no_coding() {
    let p = Plan::new(&rules(), &Method::HEAD, &request(Some("gzip")));
    let r = maybe(Some(p), answer(4096, &[]));
    assert_eq!(coding_of(&r), None);
    assert_eq!(r.headers()[header::VARY], "accept-encoding");
    assert_eq!(r.headers()[header::CONTENT_LENGTH], "4096");
}

#[test]
fn vary_is_merged_not_repeated() {
    let r = maybe(plan(Some("gzip")), answer(4096, &[("vary", "Origin")]));
    let vary: Vec<_> = r.headers().get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["Origin", "accept-encoding"]);
    for v in ["Accept-Encoding", "origin, accept-encoding", "*"] {
        let r = maybe(plan(Some("gzip")), answer(4096, &[("vary", v)]));
        let vary: Vec<_> = r.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, [v]);
    }
}

#[test]
fn a_strong_etag_becomes_weak_and_ranges_are_no_longer_offered() {
    let extra = [("etag", "\"v1\""), ("accept-ranges", "bytes")];
    let r = maybe(plan(Some("zstd")), answer(4096, &extra));
    assert_eq!(r.headers()[header::ETAG], "W/\"v1\"");
    assert!(!r.headers().contains_key(header::ACCEPT_RANGES));
    let r = maybe(plan(Some("zstd")), answer(4096, &[("etag", "W/\"v1\"")]));
    assert_eq!(r.headers()[header::ETAG], "W/\"v1\"");
    let r = maybe(plan(None), answer(4096, &extra));
    assert_eq!(
        r.headers()[header::ETAG],
        "\"v1\"",
        "unchanged when not compressed"
    );
}

/// A body fed frame by frame through a channel.
struct Chan(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);

impl http_body::Body for Chan {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx)
    }
}

fn channel() -> (
    tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    Chan,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    (tx, Chan(rx))
}

/// Decodes a stream of compressed pieces as they come.
enum Incremental {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

impl Incremental {
    fn new(c: ContentCoding) -> Self {
        match c {
            Gzip => Incremental::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            Zstd => Incremental::Zstd(zstd::stream::write::Decoder::new(Vec::new()).unwrap()),
        }
    }

    /// What `piece` decodes to, on its own.
    fn feed(&mut self, piece: &[u8]) -> Vec<u8> {
        let out = match self {
            Incremental::Gzip(d) => {
                d.write_all(piece).unwrap();
                d.flush().unwrap();
                d.get_mut()
            }
            Incremental::Zstd(d) => {
                d.write_all(piece).unwrap();
                d.flush().unwrap();
                d.get_mut()
            }
        };
        std::mem::take(out)
    }
}

#[tokio::test]
async fn each_event_is_flushed_as_it_arrives() {
    for coding in [Gzip, Zstd] {
        let (tx, inner) = channel();
        let Ok(mut body) = Compressed::new(inner, coding) else {
            panic!("no encoder")
        };
        let mut dec = Incremental::new(coding);
        for i in 0..5 {
            let event = format!("data: {{\"token\": {i}}}\n\n");
            tx.send(Ok(Frame::data(Bytes::from(event.clone()))))
                .await
                .unwrap();
            // The channel has nothing more: the piece must come out now.
            let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(dec.feed(&piece), event.as_bytes(), "{coding:?} event {i}");
        }
        drop(tx);
        let end = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(dec.feed(&end).is_empty());
        assert!(body.frame().await.is_none());
        assert!(http_body::Body::is_end_stream(&body));
    }
}

#[tokio::test]
async fn pieces_ready_together_share_a_flush_up_to_a_bound() {
    let (tx, inner) = channel();
    let mut body = Compressed::new(inner, Gzip).ok().unwrap();
    for _ in 0..3 {
        tx.send(Ok(Frame::data(json(100)))).await.unwrap();
    }
    let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let mut dec = Incremental::new(Gzip);
    assert_eq!(dec.feed(&piece).len(), 300, "three pieces, one frame");

    // A body that always has more ready is handed on in bounded frames.
    let (tx, inner) = channel();
    let mut body = Compressed::new(inner, Gzip).ok().unwrap();
    let chunk = json(16 << 10);
    for _ in 0..8 {
        tx.send(Ok(Frame::data(chunk.clone()))).await.unwrap();
    }
    let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let mut dec = Incremental::new(Gzip);
    assert_eq!(dec.feed(&piece).len(), MAX_INPUT_PER_FRAME);
}

#[tokio::test]
async fn trailers_follow_the_compressed_data() {
    let (tx, inner) = channel();
    let body = Compressed::new(inner, Zstd).ok().unwrap();
    tx.send(Ok(Frame::data(json(2000)))).await.unwrap();
    let mut t = HeaderMap::new();
    t.insert("x-checksum", HeaderValue::from_static("abc"));
    tx.send(Ok(Frame::trailers(t))).await.unwrap();
    drop(tx);
    let collected = body.collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(decode(Zstd, &collected.to_bytes()), json(2000));
}

#[tokio::test]
async fn an_error_of_the_instance_body_reaches_the_caller() {
    let (tx, inner) = channel();
    let mut body = Compressed::new(inner, Gzip).ok().unwrap();
    tx.send(Ok(Frame::data(json(100)))).await.unwrap();
    assert!(body.frame().await.unwrap().is_ok());
    tx.send(Err("instance reset".into())).await.unwrap();
    let err = body.frame().await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "instance reset");
    assert!(body.frame().await.is_none());
}
