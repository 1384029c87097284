//! RFC 9112 corners (issue #11, finding 10): stale framing from an
//! instance, an unsolicited protocol switch, transfer codings the gateway
//! does not implement, and a doubled `Host`.

use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An "instance" that reads one request head and writes `answer` verbatim
/// on every connection.
async fn scripted(answer: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    format!("http://{addr}")
}

fn pool(endpoint: &str) -> String {
    format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{endpoint}\" }} ], retry: {{ tries: 1 }} }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_both_content_length_and_chunked_is_reframed() {
    // Content-Length says 100, the chunked body carries 5 bytes: the
    // length is stale and must not reach the caller (RFC 9112 §6.3).
    let ep = scripted(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let gw = gateway(&pool(&ep)).await;
    let r = get(&client(), &format!("http://{}/x", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"hello");
    assert_ne!(
        r.headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"100"[..]),
        "the stale length travelled on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_switch_of_protocols_is_not_passed_on() {
    let ep = scripted(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\n",
    )
    .await;
    let gw = gateway(&pool(&ep)).await;
    let head = raw(
        gw.proxy_addr,
        b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transfer_codings_and_two_hosts_are_refused() {
    let a = mock("a").await;
    let gw = gateway(&pool(&a.url())).await;
    let head = raw(
        gw.proxy_addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    let head = raw(
        gw.proxy_addr,
        b"GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(a.stats().requests, 0, "neither reached the instance");
    // A plain chunked request still passes.
    let head = raw(
        gw.proxy_addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
