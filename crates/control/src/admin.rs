//! The admin listener: liveness, readiness, the native API and (nested)
//! the platform-compatible registry API.
//!
//! * `GET /healthz` — the process answers.
//! * `GET /readyz` — the proxy listener is bound and serving.
//! * `GET /metrics` — Prometheus metrics ([`crate::metrics`]; 404 with
//!   `metrics.enabled: false`). No token, like the probes.
//! * `GET /api/v1/pools` — pools and their instances with live stats:
//!   health, configured/effective weight, in-flight, requests, failures,
//!   error rate, latency p50/p95/p99, share of traffic vs expected share.
//! * `GET /api/v1/instances` — every instance once, with its overrides.
//! * `POST /api/v1/instances/{id}/drain`, `POST …/enable`,
//!   `PUT …/weight` `{"weight": N | null}` — operator overrides, kept in
//!   the store so they survive a restart. `{id}` is an instance_id or a
//!   percent-encoded endpoint. These need `Authorization: Bearer
//!   <admin.token>` when a token is set.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use fulcrum_dataplane::Gateway;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub ready: Arc<AtomicBool>,
    pub registry: Option<Arc<crate::registry::Registry>>,
    /// `admin.token`: required on mutating calls when set.
    pub token: Option<String>,
    /// Operator overrides (a source of the publisher, kept in the store).
    pub overrides: Arc<crate::publish::Overrides>,
    pub publisher: Arc<crate::publish::Publisher>,
    /// `/metrics`, unless `metrics.enabled: false`.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

pub fn router(state: AdminState) -> Router {
    let registry = state.registry.clone();
    let r = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/pools", get(pools))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/instances", get(instances))
        .route("/api/v1/instances/{id}/drain", axum::routing::post(drain))
        .route("/api/v1/instances/{id}/enable", axum::routing::post(enable))
        .route("/api/v1/instances/{id}/weight", axum::routing::put(weight))
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(serde_json::json!({"error": "method not allowed on this path"})),
            )
        })
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"error": "no such admin endpoint"})),
            )
        })
        .with_state(state);
    match registry {
        Some(reg) => r.nest("/api/v1/ai_analysis", crate::registry::api::routes(reg)),
        None => r,
    }
}

async fn readyz(State(s): State<AdminState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "starting"})),
        )
            .into_response()
    }
}

async fn metrics(State(s): State<AdminState>, headers: axum::http::HeaderMap) -> Response {
    use crate::metrics::Format;
    let Some(m) = &s.metrics else {
        return err(
            StatusCode::NOT_FOUND,
            "metrics are off (metrics.enabled: false)",
        );
    };
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    (
        [(axum::http::header::CONTENT_TYPE, format.content_type())],
        m.render(format),
    )
        .into_response()
}

async fn pools(State(s): State<AdminState>) -> Response {
    Json(serde_json::json!({ "pools": s.gateway.stats() })).into_response()
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

fn authorized(s: &AdminState, headers: &axum::http::HeaderMap) -> bool {
    let Some(token) = &s.token else { return true };
    crate::registry::api::same_secret(
        crate::registry::api::bearer(headers).as_bytes(),
        token.as_bytes(),
    )
}

/// The endpoint an id names: an instance_id or an endpoint (the path was
/// percent-decoded by axum already).
fn resolve(s: &AdminState, id: &str) -> Option<String> {
    let snap = s.gateway.snapshot();
    snap.instances
        .keys()
        .find(|ep| crate::registry::instance_id(ep) == id || *ep == id)
        .cloned()
}

async fn instances(State(s): State<AdminState>) -> Response {
    let snap = s.gateway.snapshot();
    let now = s.gateway.clock.now_ms();
    let rows: Vec<serde_json::Value> = snap
        .instances
        .iter()
        .map(|(ep, inst)| {
            let pools: Vec<&str> = snap
                .pools
                .iter()
                .filter(|p| p.members.iter().any(|m| Arc::ptr_eq(&m.inst, inst)))
                .map(|p| p.cfg.name.as_str())
                .collect();
            serde_json::json!({"instance_id": crate::registry::instance_id(ep), "pools": pools, "stats": inst.stats(now)})
        })
        .collect();
    Json(serde_json::json!({"instances": rows, "total": rows.len()})).into_response()
}

/// Changes the override of the instance `id` and stores it.
fn change(
    s: &AdminState,
    headers: &axum::http::HeaderMap,
    id: &str,
    f: impl FnOnce(&mut crate::publish::Override),
) -> Response {
    if !authorized(s, headers) {
        return err(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer …)",
        );
    }
    let Some(ep) = resolve(s, id) else {
        return err(
            StatusCode::NOT_FOUND,
            format!("no instance `{id}` (use an instance_id or a percent-encoded endpoint)"),
        );
    };
    let o = match s.overrides.update(&ep, f) {
        Ok(o) => o,
        Err(e) => {
            return err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not store the change: {e}"),
            )
        }
    };
    s.publisher.publish();
    let weight = o
        .weight
        .map_or_else(|| "configured".to_string(), |w| w.to_string());
    tracing::info!(endpoint = ?ep, %weight, drained = o.drained, "operator override");
    Json(serde_json::json!({"ok": true, "endpoint": ep, "weight": o.weight, "drained": o.drained}))
        .into_response()
}

async fn drain(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    change(&s, &headers, &id, |o| o.drained = true)
}

async fn enable(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    change(&s, &headers, &id, |o| o.drained = false)
}

async fn weight(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match crate::registry::api::read_body(body).await {
        Ok(b) => b,
        Err((st, m)) => return err(st, m),
    };
    let w = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => match v.get("weight") {
            Some(serde_json::Value::Null) => None,
            Some(x) => match x
                .as_u64()
                .filter(|n| (1..=u64::from(fulcrum_config::load::MAX_WEIGHT)).contains(n))
            {
                Some(n) => Some(n as u32),
                None => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "`weight` must be a whole number from 1 to 1000000, or null to clear",
                    )
                }
            },
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "body must be {\"weight\": N} or {\"weight\": null}",
                )
            }
        },
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    change(&s, &headers, &id, |o| o.weight = w)
}

/// The OpenAPI 3 description of this API (kept in `openapi.json`; the test
/// suite runs schemathesis against the live API with it).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}
