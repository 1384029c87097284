use crate::common::*;
use fulcrum_mock::FailureMode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn one(url: &str, extra: &str) -> String {
    format!(
        "pools:\n  p:\n{extra}    instances: [ {{ endpoint: \"{url}\" }} ]\nroutes: [ {{ path_prefix: /, pool: p }} ]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_instance_gives_504_after_the_response_header_timeout() {
    let a = mock("a").await;
    a.set_mode(FailureMode::Hang);
    let gw = gateway(&one(
        &a.url(),
        "    timeouts: { response_header: 300ms }\n    retry: { tries: 1 }\n",
    ))
    .await;
    let t = std::time::Instant::now();
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 504);
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(3));
    assert!(r.json()["error"].as_str().unwrap().contains("timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_and_a_non_http_answer_are_502_never_passed_through() {
    for mode in [FailureMode::Reset, FailureMode::Garbage] {
        let a = mock("a").await;
        a.set_mode(mode);
        let gw = gateway(&one(&a.url(), "    retry: { tries: 1 }\n")).await;
        let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
        assert_eq!(r.status, 502, "{mode:?}");
        let j = r.json();
        assert_eq!(j["pool"], "p");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("SSH-2.0"),
            "garbage leaked: {:?}",
            r.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_a_json_404() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /api/, pool: p }} ]\n",
        a.url()
    ))
    .await;
    let r = get(&client(), &format!("http://{}/other", gw.proxy_addr)).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("no route"));
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_get_413_declared_or_streamed() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "limits: {{ max_body: 1KiB }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    let url = format!("http://{}/", gw.proxy_addr);
    let r = post(&client(), &url, &vec![b'x'; 2048]).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        a.stats().requests,
        0,
        "a declared oversize body never reaches an instance"
    );
    // Chunked (no Content-Length): streamed, and cut off at the limit.
    let mut s = tokio::net::TcpStream::connect(gw.proxy_addr).await.unwrap();
    let chunk = "x".repeat(800);
    let req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let st = stats(&gw, "p", &a.url()).stats;
    assert_eq!(
        (st.failures, st.ejections),
        (0, 0),
        "the caller's oversize body is not the instance's fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_the_gateway_keeps_serving() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "limits: {{ max_header: 8KiB }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    let head = raw(gw.proxy_addr, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "y".repeat(20_000)
    );
    let head = raw(gw.proxy_addr, big.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_head_is_cut_off() {
    let a = mock("a").await;
    let gw = gateway(&format!(
        "timeouts: {{ client_header: 300ms }}\n{}",
        one(&a.url(), "")
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.proxy_addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(res.is_ok(), "connection was not closed");
    assert!(t.elapsed() < Duration::from_secs(3));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_names_neither_the_address_nor_the_os_error() {
    let a = mock("a").await;
    let port = a.addr().port();
    a.kill().await;
    let gw = gateway(&one(&a.url(), "    retry: { tries: 1 }\n")).await;
    let r = get(&client(), &format!("http://{}/", gw.proxy_addr)).await;
    assert_eq!(r.status, 502);
    let text = String::from_utf8_lossy(&r.body).to_string();
    for secret in [format!(":{port}"), "127.0.0.1".into(), "os error".into()] {
        assert!(!text.contains(&secret), "{secret} in {text}");
    }
    let j = r.json();
    assert_eq!(j["error"], "upstream failed: connection refused", "{text}");
    assert_eq!(j["pool"], "p");
}
