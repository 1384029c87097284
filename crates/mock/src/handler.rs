//! Request routing and the behaviour of every non-admin route.
//!
//! A counted request goes through: count → wait for a capacity permit →
//! in-flight bookkeeping (drop guard) → failure mode → latency → error
//! injection → route. `Reset` and `Garbage` cannot be expressed as an HTTP
//! response, so the handler records the wanted action on the connection and
//! fails the service call; hyper then drops the connection without writing
//! anything and the connection task (see `server`) carries the action out on
//! the raw socket.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::MockBody;
use crate::response::{respond, JSON, X_MOCK_INSTANCE};
use crate::state::{InFlight, Shared};
use crate::{admin, FailureMode};

const TEXT: &str = "text/plain";
/// Upper bound of `events` on `/sse`, so a typo cannot stream forever.
const MAX_SSE_EVENTS: u64 = 1_000_000;

/// Per-connection context handed to every request of that connection.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    /// A failure mode to carry out on the raw socket once hyper lets go of it.
    abort: AtomicU8,
}

impl Conn {
    pub fn new(shared: Arc<Shared>) -> Conn {
        Conn {
            shared,
            abort: AtomicU8::new(FailureMode::Normal.to_u8()),
        }
    }

    /// The action recorded by [`Conn::abort`], `Normal` if none.
    pub fn abort_action(&self) -> FailureMode {
        FailureMode::from_u8(self.abort.load(Relaxed))
    }

    fn abort(&self, mode: FailureMode) -> Result<Response<MockBody>, Abort> {
        self.abort.store(mode.to_u8(), Relaxed);
        Err(Abort(mode))
    }
}

/// Error returned by the service to make hyper drop the connection unanswered.
#[derive(Debug)]
pub(crate) struct Abort(FailureMode);

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection aborted by failure mode {}", self.0)
    }
}

impl std::error::Error for Abort {}

pub(crate) async fn handle(
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Abort> {
    let shared = &conn.shared;
    let path = req.uri().path();
    if path == "/health" {
        return health(&conn, req).await;
    }
    if path.starts_with("/__mock/") {
        return Ok(admin::handle(shared, req).await);
    }
    if path == "/ws" && is_websocket(&req) {
        shared.requests.fetch_add(1, Relaxed);
        let guard = shared.admit().await;
        return Ok(websocket(shared, req, guard));
    }
    shared.requests.fetch_add(1, Relaxed);
    let guard = shared.admit().await;
    let mode = shared.mode();
    match mode {
        FailureMode::Hang => return hang(req).await,
        FailureMode::Reset | FailureMode::Garbage => return conn.abort(mode),
        FailureMode::Normal | FailureMode::Error500 | FailureMode::Overloaded => {}
    }
    let delay = shared.sample_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if mode == FailureMode::Overloaded {
        shared.errors.fetch_add(1, Relaxed);
        let body = MockBody::full(Bytes::from_static(br#"{"error":"overloaded"}"#));
        let mut resp = respond(shared, StatusCode::SERVICE_UNAVAILABLE, JSON, body);
        resp.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("2"),
        );
        return Ok(resp);
    }
    if mode == FailureMode::Error500 || shared.inject_error() {
        shared.errors.fetch_add(1, Relaxed);
        let body = MockBody::full(shared.error_body.clone());
        return Ok(respond(
            shared,
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            body,
        ));
    }
    let path = req.uri().path();
    if path == "/fast" {
        let body = MockBody::full(Bytes::from_static(b"ok"));
        return Ok(respond(shared, StatusCode::OK, TEXT, body));
    }
    if path == "/sse" {
        return Ok(sse(shared, &req, guard));
    }
    if path == "/v1/chat/completions" && req.method() == http::Method::POST {
        return Ok(chat_completion(shared, req, guard).await);
    }
    if path.starts_with("/echo") {
        return Ok(echo(shared, req, guard));
    }
    let resp = describe(shared, req).await;
    drop(guard);
    Ok(resp)
}

async fn health(conn: &Conn, req: Request<Incoming>) -> Result<Response<MockBody>, Abort> {
    let shared = &conn.shared;
    shared.health_checks.fetch_add(1, Relaxed);
    match shared.mode() {
        FailureMode::Hang => hang(req).await,
        mode @ (FailureMode::Reset | FailureMode::Garbage) => conn.abort(mode),
        FailureMode::Normal | FailureMode::Error500 | FailureMode::Overloaded => {
            Ok(if shared.healthy() {
                let body = MockBody::full(shared.health_ok_body.clone());
                respond(shared, StatusCode::OK, JSON, body)
            } else {
                let body = MockBody::full(shared.health_bad_body.clone());
                respond(shared, StatusCode::SERVICE_UNAVAILABLE, JSON, body)
            })
        }
    }
}

/// Reads the whole request, then never answers.
async fn hang(req: Request<Incoming>) -> Result<Response<MockBody>, Abort> {
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    std::future::pending().await
}

fn sse(shared: &Shared, req: &Request<Incoming>, guard: InFlight) -> Response<MockBody> {
    let mut events = 3;
    let mut interval_ms = 10;
    for (key, value) in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        match key {
            "events" => events = value.parse().unwrap_or(events).min(MAX_SSE_EVENTS),
            "interval_ms" => interval_ms = value.parse().unwrap_or(interval_ms),
            _ => {}
        }
    }
    let interval = std::time::Duration::from_millis(interval_ms);
    let body = MockBody::sse(&shared.name_json, events, interval, guard);
    let mut resp = respond(shared, StatusCode::OK, "text/event-stream", body);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    resp
}

/// An OpenAI-compatible `POST /v1/chat/completions`: the answer is
/// `max_tokens` (default 10) tokens `tok0 tok1 …`; with `"stream": true`
/// they arrive as SSE chunks `x-mock-token-interval-ms` (default 20) apart.
async fn chat_completion(
    shared: &Shared,
    req: Request<Incoming>,
    guard: InFlight,
) -> Response<MockBody> {
    let interval = req
        .headers()
        .get("x-mock-token-interval-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        let body = MockBody::full(Bytes::from_static(
            br#"{"error":{"message":"the body must be JSON","type":"invalid_request_error"}}"#,
        ));
        return respond(shared, StatusCode::BAD_REQUEST, JSON, body);
    };
    let model = doc["model"].as_str().unwrap_or("mock").to_string();
    let tokens = doc["max_tokens"]
        .as_u64()
        .or(doc["max_completion_tokens"].as_u64())
        .unwrap_or(10)
        .clamp(1, 10_000);
    let model_json = serde_json::Value::from(model.clone()).to_string();
    if doc["stream"].as_bool() == Some(true) {
        let body = MockBody::openai(
            &model_json,
            tokens,
            std::time::Duration::from_millis(interval),
            guard,
        );
        let mut resp = respond(shared, StatusCode::OK, "text/event-stream", body);
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        return resp;
    }
    let content: String = (0..tokens).map(crate::body::token).collect();
    let doc = serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1},
    });
    respond(
        shared,
        StatusCode::OK,
        JSON,
        MockBody::full(doc.to_string()),
    )
}

/// Streams the request body back, frame by frame, with the same content type.
fn echo(shared: &Shared, req: Request<Incoming>, guard: InFlight) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let mut resp = Response::new(MockBody::echo(body, guard));
    let headers = resp.headers_mut();
    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    headers.insert(X_MOCK_INSTANCE, shared.instance_header.clone());
    if let Some(r) = shared
        .load_report
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        headers.insert("endpoint-load-metrics", r.clone());
    }
    resp
}

/// The default route: a JSON description of the request.
async fn describe(shared: &Shared, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, mut body) = req.into_parts();
    let mut body_bytes = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            body_bytes += data.len() as u64;
        }
    }
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.entry(name.as_str()) {
            serde_json::map::Entry::Vacant(e) => {
                e.insert(value.into());
            }
            serde_json::map::Entry::Occupied(mut e) => {
                let joined = format!("{}, {value}", e.get().as_str().unwrap_or_default());
                e.insert(joined.into());
            }
        }
    }
    let doc = serde_json::json!({
        "instance": shared.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "body_bytes": body_bytes,
        "headers": headers,
    });
    respond(
        shared,
        StatusCode::OK,
        JSON,
        MockBody::full(doc.to_string()),
    )
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `GET /ws` with `Upgrade: websocket`: accepts the handshake and echoes
/// every text and binary frame back (pings are answered by the library),
/// holding an in-flight slot while the socket is open.
fn websocket(
    shared: &Arc<crate::state::Shared>,
    mut req: Request<Incoming>,
    guard: crate::state::InFlight,
) -> Response<MockBody> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
        .unwrap_or_default();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let _guard = guard;
        let Ok(up) = on_upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(up),
            Role::Server,
            None,
        )
        .await;
        // Pings are answered and a close is echoed with its code by
        // tungstenite itself; reading on until the end sends those replies.
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut resp = respond(
        shared,
        StatusCode::SWITCHING_PROTOCOLS,
        TEXT,
        MockBody::full(Bytes::new()),
    );
    let h = resp.headers_mut();
    h.insert(
        hyper::header::UPGRADE,
        HeaderValue::from_static("websocket"),
    );
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    resp
}
