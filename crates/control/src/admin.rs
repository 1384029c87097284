//! The admin listener: liveness, readiness, the native API and (nested)
//! the platform-compatible registry API.
//!
//! * `GET /healthz` — the process answers.
//! * `GET /version` — version, commit and build date.
//! * `GET /readyz` — the proxy listener is bound and serving; 503
//!   `draining` from the moment shutdown begins (the admin listener
//!   serves until the proxy has drained).
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
//! * `GET /api/v1/config` — the running configuration, secrets redacted
//!   ([`crate::config_view`]).
//! * `POST /api/v1/config/reload` — reads the file again, like `SIGHUP`
//!   ([`crate::reload`]); needs the admin token when one is set.
//! * `GET /` — the dashboard ([`crate::dashboard`]), with
//!   `GET /api/v1/history` and `GET /api/v1/events`.
//! * `GET /api/openapi.json` — the OpenAPI document of all of these,
//!   generated from the handlers' `#[utoipa::path]` and types
//!   ([`crate::openapi`]).
//!
//! Every route is added with `routes!(handler)`, which serves it and
//! documents it together; a test (`tests/openapi.rs`) fails on a route
//! served but not documented, or documented but not served.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::{Extension, Router};
use fulcrum_dataplane::runtime::events::EventKind;
use fulcrum_dataplane::runtime::instance::InstanceStats;
use fulcrum_dataplane::{Gateway, PoolStats};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ErrorBody;

/// Where the registry API is nested.
pub const REGISTRY_PREFIX: &str = "/api/v1/ai_analysis";

#[derive(Debug, Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub ready: Arc<AtomicBool>,
    /// Set when the drain starts (SIGTERM): `/readyz` answers 503 `draining`.
    pub draining: Arc<AtomicBool>,
    pub registry: Option<Arc<crate::registry::Registry>>,
    /// `admin.token`: required on mutating calls when set.
    pub token: Option<String>,
    /// Operator overrides (a source of the publisher, kept in the store).
    pub overrides: Arc<crate::publish::Overrides>,
    pub publisher: Arc<crate::publish::Publisher>,
    /// `/metrics`, unless `metrics.enabled: false`.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The dashboard at `/`, its history and event routes.
    pub dashboard: Arc<crate::dashboard::Dashboard>,
    /// Reads the config file again (`POST /api/v1/config/reload`); `None`
    /// when nothing can (tests that build the router alone).
    pub reload: Option<Arc<dyn crate::reload::Reload>>,
}

pub fn router(state: AdminState) -> Router {
    let registry = state.registry.clone();
    let (dash, dash_doc) = crate::dashboard::api::routes(state.dashboard.clone());
    let (router, mut doc) = OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(version))
        .routes(routes!(metrics))
        .routes(routes!(pools))
        .routes(routes!(openapi))
        .routes(routes!(instances))
        .routes(routes!(drain))
        .routes(routes!(enable))
        .routes(routes!(weight))
        .routes(routes!(config))
        .routes(routes!(reload))
        .split_for_parts();
    doc.merge(dash_doc);
    let r = router
        .method_not_allowed_fallback(|| async {
            err(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path",
            )
        })
        .fallback(|| async { err(StatusCode::NOT_FOUND, "no such admin endpoint") })
        .with_state(state)
        .merge(dash);
    let (r, doc) = match registry {
        Some(reg) => {
            let (api, api_doc) = crate::registry::api::routes(reg);
            (
                r.nest(REGISTRY_PREFIX, api),
                doc.nest(REGISTRY_PREFIX, api_doc),
            )
        }
        None => (r, doc),
    };
    let json = doc
        .to_json()
        .expect("the OpenAPI document serializes (it is built from Rust values)");
    r.layer(Extension(Document(Arc::from(json))))
}

/// The serialized OpenAPI document, built once with the router.
#[derive(Clone)]
struct Document(Arc<str>);

/// `{"status": …}`: `ok` (healthz), `ready` or `starting` (readyz).
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive", body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The version, commit and build date of this binary.
#[utoipa::path(get, path = "/version", responses((status = 200, description = "build", body = crate::version::Version)))]
async fn version() -> Json<crate::version::Version> {
    Json(crate::version::Version::CURRENT)
}

/// The proxy listener is bound and serving (503 `starting` before, 503
/// `draining` once shutdown has begun).
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "ready", body = Status),
    (status = 503, description = "starting or draining", body = Status),
))]
async fn readyz(State(s): State<AdminState>) -> Response {
    let status = if s.draining.load(Ordering::Relaxed) {
        "draining"
    } else if s.ready.load(Ordering::Relaxed) {
        return Json(Status { status: "ready" }).into_response();
    } else {
        "starting"
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(Status { status })).into_response()
}

/// Prometheus metrics (docs/METRICS.md): OpenMetrics when the `Accept`
/// header asks for it, the classic text format otherwise.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "metrics in the Prometheus text format (or OpenMetrics, by Accept)",
     content(
        (String = "text/plain; version=0.0.4; charset=utf-8"),
        (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
     )),
    (status = 404, description = "metrics are off (metrics.enabled: false)", body = crate::openapi::ErrorBody),
))]
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

/// `GET /api/v1/pools`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pools {
    pub pools: Vec<PoolStats>,
}

/// Pools and instances with live stats.
#[utoipa::path(get, path = "/api/v1/pools", responses((status = 200, description = "pools", body = Pools)))]
async fn pools(State(s): State<AdminState>) -> Json<Pools> {
    Json(Pools {
        pools: s.gateway.stats(),
    })
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    ErrorBody::response(status, msg)
}

fn authorized(s: &AdminState, headers: &axum::http::HeaderMap) -> bool {
    let Some(token) = &s.token else { return true };
    crate::registry::api::same_secret(
        crate::registry::api::bearer(headers).as_bytes(),
        token.as_bytes(),
    )
}

/// The endpoint an id names: an instance_id or an endpoint (the path was
/// percent-decoded by axum already), as written or in another spelling of
/// the same URL (`http://H:P/` for `http://h:p`, the default port).
fn resolve(s: &AdminState, id: &str) -> Option<String> {
    let snap = s.gateway.snapshot();
    let exact = snap
        .instances
        .keys()
        .find(|ep| crate::registry::instance_id(ep) == id || *ep == id);
    if let Some(ep) = exact {
        return Some(ep.clone());
    }
    let want = canonical(id)?;
    snap.instances
        .keys()
        .find(|ep| canonical(ep).as_deref() == Some(want.as_str()))
        .cloned()
}

/// One spelling of an endpoint URL: lower-case scheme and host, the port
/// always written, no trailing `/`.
fn canonical(url: &str) -> Option<String> {
    let e = fulcrum_config::parse_endpoint(url.trim()).ok()?;
    Some(format!(
        "{}://{}{}",
        e.scheme.to_ascii_lowercase(),
        e.authority.to_ascii_lowercase(),
        e.base_path.trim_end_matches('/')
    ))
}

/// `GET /api/v1/instances`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instances {
    pub instances: Vec<InstanceRow>,
    pub total: usize,
}

/// One instance, once, with the pools it is a member of.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceRow {
    pub instance_id: String,
    pub pools: Vec<String>,
    pub stats: InstanceStats,
}

/// Every instance once.
#[utoipa::path(get, path = "/api/v1/instances", responses((status = 200, description = "instances", body = Instances)))]
async fn instances(State(s): State<AdminState>) -> Json<Instances> {
    let snap = s.gateway.snapshot();
    let now = s.gateway.clock.now_ms();
    let rows: Vec<InstanceRow> = snap
        .instances
        .iter()
        .map(|(ep, inst)| InstanceRow {
            instance_id: crate::registry::instance_id(ep),
            pools: snap
                .pools
                .iter()
                .filter(|p| p.members.iter().any(|m| Arc::ptr_eq(&m.inst, inst)))
                .map(|p| p.cfg.name.clone())
                .collect(),
            stats: inst.stats(now),
        })
        .collect();
    Json(Instances {
        total: rows.len(),
        instances: rows,
    })
}

/// An operator override, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideAnswer {
    pub ok: bool,
    pub endpoint: String,
    /// The weight in force instead of the configured one (null: configured).
    pub weight: Option<u32>,
    pub drained: bool,
}

/// `PUT …/weight`: a weight from 1 to 1000000, or null for the configured one.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeightBody {
    #[schema(required = true, minimum = 1, maximum = 1_000_000)]
    pub weight: Option<u32>,
}

/// Which operator action a [`change`] is (for the event log).
#[derive(Debug, Clone, Copy)]
enum Change {
    Drain,
    Enable,
    Weight,
}

/// Changes the override of the instance `id` and stores it.
fn change(
    s: &AdminState,
    headers: &axum::http::HeaderMap,
    id: &str,
    what: Change,
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
            format!(
                "no instance `{id}`: name one by its endpoint URL or its instance_id, \
                 as `fulcrum stats` or GET /api/v1/instances list them"
            ),
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
    let (kind, message) = match what {
        Change::Drain => (EventKind::Drained, "drained by an operator".to_string()),
        Change::Enable => (EventKind::Enabled, "enabled by an operator".to_string()),
        Change::Weight => (
            EventKind::Weight,
            format!("weight set to {weight} by an operator"),
        ),
    };
    s.gateway
        .events
        .push(s.gateway.clock.unix_ms(), kind, Some(&ep), None, &message);
    Json(OverrideAnswer {
        ok: true,
        endpoint: ep,
        weight: o.weight,
        drained: o.drained,
    })
    .into_response()
}

/// No new requests to this instance.
#[utoipa::path(post, path = "/api/v1/instances/{id}/drain",
    params(("id" = String, Path, description = "instance_id or endpoint URL (percent-encoded)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "done", body = OverrideAnswer),
        (status = 401, description = "missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "no such instance", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn drain(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    change(&s, &headers, &id, Change::Drain, |o| o.drained = true)
}

/// Undo drain.
#[utoipa::path(post, path = "/api/v1/instances/{id}/enable",
    params(("id" = String, Path, description = "instance_id or endpoint URL (percent-encoded)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "done", body = OverrideAnswer),
        (status = 401, description = "missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "no such instance", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn enable(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    change(&s, &headers, &id, Change::Enable, |o| o.drained = false)
}

/// Override the weight (null = configured).
#[utoipa::path(put, path = "/api/v1/instances/{id}/weight",
    params(("id" = String, Path, description = "instance_id or endpoint URL (percent-encoded)")),
    security(("bearer" = [])),
    request_body = WeightBody,
    responses(
        (status = 200, description = "done", body = OverrideAnswer),
        (status = 400, description = "not {\"weight\": N | null}", body = ErrorBody),
        (status = 401, description = "missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "no such instance", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
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
    change(&s, &headers, &id, Change::Weight, |o| o.weight = w)
}

/// The running configuration, defaults filled in, secrets redacted
/// (`admin.token`, `registry.token` read `<redacted>`).
#[utoipa::path(get, path = "/api/v1/config", responses(
    (status = 200, description = "the running configuration", body = serde_json::Value),
))]
async fn config(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(crate::config_view::view(&s.gateway.snapshot().config))
}

/// Reads the config file again and applies it when it is valid, like
/// `SIGHUP`; answers what changed and what needs a restart, or every
/// error of the file (the running config stays).
#[utoipa::path(post, path = "/api/v1/config/reload",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "applied", body = crate::reload::ReloadReport),
        (status = 401, description = "missing or wrong admin token", body = ErrorBody),
        (status = 409, description = "started without a config file", body = crate::reload::ReloadRefused),
        (status = 422, description = "the file is invalid; nothing changed", body = crate::reload::ReloadRefused),
    ))]
async fn reload(State(s): State<AdminState>, headers: axum::http::HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return err(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer …)",
        );
    }
    let Some(r) = s.reload.clone() else {
        let refused = crate::reload::ReloadRefused {
            no_file: true,
            ..crate::reload::ReloadRefused::invalid("this gateway cannot reload", vec![])
        };
        return (StatusCode::CONFLICT, Json(refused)).into_response();
    };
    // Reading and validating the file is blocking work.
    match tokio::task::spawn_blocking(move || r.reload()).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(refused)) if refused.no_file => {
            (StatusCode::CONFLICT, Json(refused)).into_response()
        }
        Ok(Err(refused)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(refused)).into_response(),
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the reload failed: {e}"),
        ),
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", responses(
    (status = 200, description = "OpenAPI 3.1", body = serde_json::Value),
))]
async fn openapi(Extension(doc): Extension<Document>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
        .into_response()
}
