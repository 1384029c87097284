//! One record per request (`fulcrum_dataplane::observe`): finished when
//! the response body ends or is dropped, with the pool, the instance that
//! answered, the tries and why the last retry happened, the status and who
//! was to blame.

use crate::common::*;
use fulcrum_dataplane::observe::{Observer, Outcome, Record};
use fulcrum_mock::FailureMode;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Record>>);

impl Observer for Collect {
    fn request_done(&self, r: &Record) {
        self.0.lock().unwrap().push(r.clone());
    }
}

impl Collect {
    fn taken(&self) -> Vec<Record> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    async fn one(&self) -> Record {
        eventually(Duration::from_secs(5), "a finished record", || {
            !self.0.lock().unwrap().is_empty()
        })
        .await;
        let mut v = self.taken();
        assert_eq!(v.len(), 1, "one record per request: {v:?}");
        v.remove(0)
    }
}

fn yaml(urls: &[String], extra: &str) -> String {
    let inst: Vec<String> = urls
        .iter()
        .map(|u| format!("{{ endpoint: \"{u}\" }}"))
        .collect();
    format!(
        "pools:\n  p:\n    algorithm: round_robin\n{extra}    instances: [ {} ]\nroutes: [ {{ path_prefix: /api/, pool: p, strip_prefix: true }} ]\n",
        inst.join(", ")
    )
}

async fn observed(yaml: &str) -> (fulcrum::app::Running, Arc<Collect>) {
    // Without metrics the gateway installs no observer of its own, so the
    // test's is the first (only the first call takes effect).
    let gw = gateway(&format!("metrics: {{ enabled: false }}\n{yaml}")).await;
    let c = Arc::new(Collect::default());
    assert!(gw.gateway.set_observer(c.clone()));
    (gw, c)
}

fn endpoint(r: &Record) -> String {
    r.instance
        .as_ref()
        .map(|i| i.endpoint.url.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxied_request_is_recorded_when_its_body_ends() {
    let a = mock("a").await;
    let (gw, seen) = observed(&yaml(&[a.url()], "")).await;
    let r = get(&client(), &format!("http://{}/api/fast", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    let rec = seen.one().await;
    assert_eq!(rec.pool.as_ref().unwrap().cfg.name, "p");
    assert_eq!(endpoint(&rec), a.url());
    assert_eq!(rec.tries, 1);
    assert_eq!(rec.retried_on, None);
    assert_eq!(rec.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(rec.outcome, Outcome::Complete);
    assert_eq!(rec.blame, None);
    assert_eq!(rec.uri.path(), "/api/fast");
    assert!(rec.head_after.unwrap() <= rec.total.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_names_the_instance_that_answered_and_why_it_retried() {
    let (a, b) = (mock("a").await, mock("b").await);
    a.set_mode(FailureMode::Reset);
    let (gw, seen) = observed(&yaml(&[a.url(), b.url()], "")).await;
    // Round robin starts at a; the reset is retried on b.
    let r = get(&client(), &format!("http://{}/api/fast", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    let rec = seen.one().await;
    assert_eq!(rec.tries, 2);
    assert_eq!(
        rec.retried_on.map(|f| f.to_string()).as_deref(),
        Some("reset")
    );
    assert_eq!(endpoint(&rec), b.url());
    assert_eq!(rec.outcome, Outcome::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_answers_are_recorded_with_the_blame() {
    let a = mock("a").await;
    a.kill().await;
    let (gw, seen) = observed(&yaml(&[a.url()], "    retry: { tries: 1 }\n")).await;
    let r = get(&client(), &format!("http://{}/nowhere", gw.proxy_addr)).await;
    assert_eq!(r.status, 404);
    let rec = seen.one().await;
    assert_eq!(rec.tries, 0);
    assert!(rec.pool.is_none());
    assert_eq!(rec.blame, Some(fulcrum_dataplane::http::Blame::Downstream));
    assert_eq!(rec.outcome, Outcome::Complete);

    let r = get(&client(), &format!("http://{}/api/x", gw.proxy_addr)).await;
    assert_eq!(r.status, 502);
    let rec = seen.one().await;
    assert_eq!(rec.tries, 1);
    assert_eq!(endpoint(&rec), a.url());
    assert_eq!(rec.status.map(|s| s.as_u16()), Some(502));
    assert_eq!(rec.blame, Some(fulcrum_dataplane::http::Blame::Upstream));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_leaves_mid_stream_is_recorded_as_dropped() {
    let a = mock("a").await;
    let (gw, seen) = observed(&yaml(&[a.url()], "")).await;
    let url = format!("http://{}/api/sse?events=50&interval_ms=50", gw.proxy_addr);
    let resp = client()
        .get(url.parse().unwrap())
        .await
        .expect("response head");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // One event, then the caller goes away.
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    assert!(seen.taken().is_empty(), "not finished while streaming");
    drop(body);
    let rec = seen.one().await;
    assert_eq!(rec.outcome, Outcome::Dropped);
    assert_eq!(rec.status.map(|s| s.as_u16()), Some(200));
    eventually(Duration::from_secs(5), "slot freed", || {
        stats(&gw, "p", &a.url()).stats.in_flight == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_is_recorded_once_when_it_closes_with_its_bytes_each_way() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let a = mock("a").await;
    let (gw, seen) = observed(&yaml(&[a.url()], "")).await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", gw.proxy_addr))
        .await
        .expect("handshake through fulcrum");
    assert_eq!(resp.status(), 101);
    ws.send(Message::Binary(vec![7u8; 100].into()))
        .await
        .unwrap();
    assert!(ws.next().await.unwrap().unwrap().is_binary());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        seen.taken().is_empty(),
        "not finished while the socket is open"
    );
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let rec = seen.one().await;
    assert_eq!(rec.status.map(|s| s.as_u16()), Some(101));
    assert_eq!(rec.outcome, Outcome::Complete);
    assert_eq!(endpoint(&rec), a.url());
    // 100 bytes in a masked frame from the caller, echoed unmasked.
    assert!(rec.bytes_in >= 106 && rec.bytes_out >= 102, "{rec:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(seen.taken().is_empty(), "exactly one record");
}
