//! WebSocket pass-through: the handshake is balanced, the frames tunnelled.

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_websockets_echo_intact_spread_by_least_connections() {
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "pools: {{ ws: {{ algorithm: least_connections, instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /ws, pool: ws }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let url = format!("ws://{}/ws", gw.proxy_addr);
    let all_open = Arc::new(Barrier::new(201));
    let done = Arc::new(Barrier::new(201));
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let (url, all_open, done) = (url.clone(), all_open.clone(), done.clone());
            tokio::spawn(async move {
                let (mut ws, resp) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .expect("handshake through fulcrum");
                assert_eq!(resp.status(), 101);
                all_open.wait().await;
                let bin: Vec<u8> = (0..1024u32).map(|k| ((k * 31 + i) % 251) as u8).collect();
                for round in 0..3 {
                    ws.send(Message::Binary(bin.clone().into())).await.unwrap();
                    ws.send(Message::Text(
                        format!("{{\"device\":{i},\"round\":{round}}}").into(),
                    ))
                    .await
                    .unwrap();
                    match ws.next().await.unwrap().unwrap() {
                        Message::Binary(got) => {
                            assert_eq!(got.as_ref(), &bin[..], "binary frame intact")
                        }
                        other => panic!("expected binary, got {other:?}"),
                    }
                    match ws.next().await.unwrap().unwrap() {
                        Message::Text(t) => {
                            assert_eq!(t.as_str(), format!("{{\"device\":{i},\"round\":{round}}}"))
                        }
                        other => panic!("expected text, got {other:?}"),
                    }
                }
                done.wait().await;
                ws.close(None).await.unwrap();
            })
        })
        .collect();
    all_open.wait().await;
    // Every socket is open: least_connections spread them over both instances.
    let (ia, ib) = (
        stats(&gw, "ws", &a.url()).stats.in_flight,
        stats(&gw, "ws", &b.url()).stats.in_flight,
    );
    assert_eq!(ia + ib, 200, "open sockets count as in-flight");
    let open = stats(&gw, "ws", &a.url()).stats.open_websockets
        + stats(&gw, "ws", &b.url()).stats.open_websockets;
    assert_eq!(open, 200, "and show in stats as open WebSockets");
    assert!(ia.abs_diff(ib) <= 2, "spread {ia} / {ib}");
    done.wait().await;
    for t in tasks {
        t.await.unwrap();
    }
    eventually(
        Duration::from_secs(5),
        "sockets closed on both sides",
        || {
            stats(&gw, "ws", &a.url()).stats.in_flight + stats(&gw, "ws", &b.url()).stats.in_flight
                == 0
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_instance_is_skipped_for_the_handshake_and_idle_sockets_close() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.kill().await;
    let gw = gateway(&format!(
        "pools: {{ ws: {{ timeouts: {{ idle: 500ms }}, instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: ws }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let url = format!("ws://{}/ws", gw.proxy_addr);
    for _ in 0..4 {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("failover applies to the handshake");
        ws.send(Message::Text("hi".into())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Text("hi".into())
        );
    }
    // A silent socket is closed after timeouts.idle.
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("closed by the gateway");
    assert!(end.is_none() || end.unwrap().is_err() || t.elapsed() >= Duration::from_millis(400));
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "closed too early: {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_on_device_id_keeps_a_devices_sockets_on_one_instance() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let gw = gateway(&format!(
        "pools: {{ ws: {{ algorithm: consistent_hash, hash_key: \"header:Device-Id\", instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: ws }} ]\n",
        a.url(),
        b.url(),
        c.url()
    ))
    .await;
    let mocks = [&a, &b, &c];
    for device in 0..20 {
        let mut home = None;
        for _ in 0..3 {
            let before: Vec<u64> = mocks.iter().map(|m| m.stats().requests).collect();
            let mut req = format!("ws://{}/ws", gw.proxy_addr)
                .into_client_request()
                .unwrap();
            req.headers_mut()
                .insert("device-id", format!("dev-{device}").parse().unwrap());
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
            ws.send(Message::Text("x".into())).await.unwrap();
            ws.next().await.unwrap().unwrap();
            ws.close(None).await.unwrap();
            let now: Vec<u64> = mocks.iter().map(|m| m.stats().requests).collect();
            let which = (0..3).find(|&i| now[i] > before[i]).unwrap();
            assert_eq!(
                *home.get_or_insert(which),
                which,
                "device {device} moved between sockets"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_and_close_codes_cross_the_tunnel() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let m = mock("a").await;
    let gw = gateway(&format!(
        "pools: {{ ws: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: ws }} ]\n",
        m.url()
    ))
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.proxy_addr))
        .await
        .unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Pong(p) => assert_eq!(p.as_ref(), b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Library(4000),
        reason: "session over".into(),
    })))
    .await
    .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Library(4000)),
        other => panic!("expected the close echoed, got {other:?}"),
    }
    // Both sides closed: the tunnel is gone and the slot freed.
    eventually(Duration::from_secs(5), "socket released", || {
        stats(&gw, "ws", &m.url()).stats.in_flight == 0
    })
    .await;
    assert_eq!(stats(&gw, "ws", &m.url()).stats.open_websockets, 0);
    gw.shutdown().await;
}
