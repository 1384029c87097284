//! The video-analysis platform's registry API, path for path, so existing
//! algorithm services register with Fulcrum unchanged (all under
//! `/api/v1/ai_analysis/`):
//!
//! | call | answer |
//! |---|---|
//! | `POST /register` | `{"ok":true,"service_id","instance_id"}`; `400 {"error"}` on a bad body (or more than `registry.max_task_types` task types); `403` when the config does not allow it (see below); `409` when the registry holds `registry.max_instances` |
//! | `POST /heartbeat/{id}` | id = instance_id, endpoint (percent-encoded) or service_id; optional stats body |
//! | `DELETE /unregister/{id}` | same id forms |
//! | `POST /clear_all` | `{"ok":true,"cleared_count":N}` |
//! | `GET /services` | `{"services":[…],"total":N}`, one row per endpoint |
//! | `GET /services/stats/{task_type}` | the same for one task type, plus `task_type` |
//! | `GET /load_balance/info`, `/load_balance/analysis` | per task type: instances, weights, call counts, min/max/avg, variance, balance quality |
//! | `GET /inference_stats`, `POST /inference_stats/reset` | totals, successes, failures |
//!
//! When `registry.token` is set, the mutating calls need
//! `Authorization: Bearer <token>` (compared in constant time).
//!
//! A well-formed registration is refused with `403` when a task type names
//! a pool of the config file that does not take registrations (its
//! `pools.NAME.registration` is not `true`): the whole registration, also
//! when its other task types would be allowed, so an instance is never
//! half-registered.
//!
//! A `200` means the registration is stored (it survives a crash from then
//! on). It is routed by then too while publications are cheap; on a large
//! registry it is routed within the publisher's coalescing pause plus one
//! build ([`crate::publish::Publisher::publish_soon`]).
//!
//! `409 Conflict` for a full registry: the request is valid and may
//! succeed once instances leave (unregister or expiry); it is not a rate
//! (429) and not a storage failure (507). Replacing a registration (same
//! endpoint) never counts as a new instance.

use super::answers::{
    Analysis, BalanceInfo, BalanceInstance, Cleared, ConsoleService, ConsoleTask, HeartbeatAnswer,
    InferenceStats, Registered, Reset, Service, Services, TaskBalance, Unregistered,
};
use super::record::RegisterBody;
use super::{instance_id, HeartbeatStats, Record, RegisterRequest, Registry, RegistryError};
use crate::openapi::ErrorBody;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::Router;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest accepted request body on the registry API.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
    /// Call counts at the last `inference_stats/reset`, by endpoint.
    baseline: Arc<Mutex<Baseline>>,
}

/// Counts at the last `inference_stats/reset`: calls and failures by
/// endpoint, requests dropped by the queues by pool, and when (gateway ms).
#[derive(Debug, Default, Clone)]
struct Baseline {
    calls: HashMap<String, (u64, u64)>,
    dropped: HashMap<String, u64>,
    at_ms: u64,
}

/// The registry's routes and their part of the OpenAPI document (paths
/// relative to where `admin::router` nests them).
pub fn routes(registry: Arc<Registry>) -> (Router, utoipa::openapi::OpenApi) {
    let state = ApiState {
        registry,
        baseline: Arc::default(),
    };
    let (router, doc) = OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(heartbeat))
        .routes(routes!(unregister))
        .routes(routes!(clear_all))
        .routes(routes!(services))
        .routes(routes!(services_of))
        .routes(routes!(balance_info))
        .routes(routes!(balance_analysis))
        .routes(routes!(inference_stats))
        .routes(routes!(inference_reset))
        .split_for_parts();
    let router = router
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path",
            )
        })
        .with_state(state);
    (router, doc)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = ErrorBody {
        ok: Some(false),
        error: msg.into(),
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = match self {
            RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::Forbidden(_) => StatusCode::FORBIDDEN,
            RegistryError::Full(_) => StatusCode::CONFLICT,
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

/// The token of an `Authorization: Bearer …` header ("" when absent).
pub(crate) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which token a call needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// `registry.token` (what services send): register, heartbeat.
    Registry,
    /// Either token: unregister (a service leaving, or an operator).
    Either,
    /// `admin.token` when set (else `registry.token`): clear_all, reset.
    Admin,
}

fn authorized(s: &ApiState, headers: &HeaderMap, need: Need) -> Result<(), (StatusCode, String)> {
    let cfg = s.registry.config();
    let (reg, admin) = (cfg.registry.token, cfg.admin.token);
    let accepted: Vec<&String> = match need {
        Need::Registry => reg.iter().collect(),
        Need::Either => reg.iter().chain(admin.iter()).collect(),
        Need::Admin => admin
            .iter()
            .chain(if admin.is_none() {
                reg.iter()
            } else {
                None.iter()
            })
            .collect(),
    };
    if accepted.is_empty() {
        return Ok(());
    }
    let given = bearer(headers);
    if accepted
        .iter()
        .any(|t| same_secret(given.as_bytes(), t.as_bytes()))
    {
        Ok(())
    } else {
        let which = if need == Need::Admin && admin.is_some() {
            "admin"
        } else {
            "registry"
        };
        Err((
            StatusCode::UNAUTHORIZED,
            format!("missing or wrong {which} token (Authorization: Bearer …)"),
        ))
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes (413 JSON beyond).
pub(crate) async fn read_body(body: axum::body::Body) -> Result<Bytes, (StatusCode, String)> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )),
    }
}

fn json_body(body: &Bytes) -> Result<Value, (StatusCode, String)> {
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

/// The `id` of heartbeat and unregister.
const ID: &str = "instance_id, endpoint URL (percent-encoded) or service_id";

/// Register (or replace, by endpoint) an instance.
#[utoipa::path(post, path = "/register",
    security(("bearer" = [])),
    request_body = RegisterBody,
    responses(
        (status = 200, description = "registered (stored, and routed or about to be)", body = Registered),
        (status = 400, description = "a field is missing or wrong (the message names it), or more than registry.max_task_types task types", body = ErrorBody),
        (status = 401, description = "missing or wrong registry token", body = ErrorBody),
        (status = 403, description = "not allowed by the config in force: the endpoint is one of the gateway's own listeners or not in registry.allowed_hosts, or a task type names a pool without registration: true", body = ErrorBody),
        (status = 409, description = "the registry holds registry.max_instances instances already", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn register(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Registry) {
        return error(st, m);
    }
    let v = match read_body(body).await.and_then(|b| json_body(&b)) {
        Ok(v) => v,
        Err((st, m)) => return error(st, m),
    };
    match s.registry.register(RegisterRequest(v)) {
        Ok(r) => Json(Registered {
            ok: true,
            instance_id: instance_id(&r.endpoint),
            service_id: r.service_id,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Heartbeat, optionally with stats.
///
/// Stats that cannot be read are reported back in `warning` and ignored;
/// liveness is refreshed all the same.
#[utoipa::path(post, path = "/heartbeat/{id}",
    params(("id" = String, Path, description = ID)),
    security(("bearer" = [])),
    request_body(content = Option<HeartbeatStats>, description = "optional stats (an empty body is a bare heartbeat)"),
    responses(
        (status = 200, description = "refreshed", body = HeartbeatAnswer),
        (status = 400, description = "the body could not be read", body = ErrorBody),
        (status = 401, description = "missing or wrong registry token", body = ErrorBody),
        (status = 404, description = "no registration matches the id", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn heartbeat(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Registry) {
        return error(st, m);
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err((st, m)) => return error(st, m),
    };
    // A heartbeat always refreshes liveness; stats that cannot be read are
    // reported back and ignored, so a service is never expired over them.
    let (stats, warning) = if body.iter().all(u8::is_ascii_whitespace) {
        (None, None)
    } else {
        match json_body(&body)
            .map_err(|(_, m)| m)
            .and_then(|v| HeartbeatStats::from_json(&v).map_err(|e| e.to_string()))
        {
            Ok(st) => (Some(st), None),
            Err(m) => (None, Some(format!("stats ignored: {m}"))),
        }
    };
    match s.registry.heartbeat(&id, stats) {
        Ok(n) => Json(HeartbeatAnswer {
            ok: true,
            updated: n,
            warning,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Remove instances.
///
/// Needs registry.token or admin.token when either is set.
#[utoipa::path(delete, path = "/unregister/{id}",
    params(("id" = String, Path, description = ID)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "removed", body = Unregistered),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no registration matches the id", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn unregister(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Either) {
        return error(st, m);
    }
    match s.registry.unregister(&id) {
        Ok(n) => Json(Unregistered {
            ok: true,
            removed: n,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Remove every registration.
///
/// Needs admin.token when set (else registry.token when set).
#[utoipa::path(post, path = "/clear_all",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "cleared", body = Cleared),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 500, description = "the store failed", body = ErrorBody),
    ))]
async fn clear_all(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Admin) {
        return error(st, m);
    }
    match s.registry.clear() {
        Ok(n) => Json(Cleared {
            ok: true,
            cleared_count: n,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Live call counts and health by endpoint: (requests, failures, healthy, in_flight).
type Live = HashMap<String, (u64, u64, bool, u32)>;

/// Live counters of every instance, by endpoint.
fn live(s: &ApiState) -> Live {
    let snap = s.registry.gateway.snapshot();
    let now = s.registry.gateway.clock.now_ms();
    snap.instances
        .iter()
        .map(|(url, i)| {
            let st = i.stats(now);
            // With `store: redis`, the fleet's counts.
            let (requests, failures) = s.registry.fleet.now(url, st.requests, st.failures);
            (
                url.clone(),
                (requests, failures, st.healthy && !st.ejected, st.in_flight),
            )
        })
        .collect()
}

fn row(r: &Record, live: &Live, now: u64) -> Service {
    let (calls, failures, healthy, in_flight) = live.get(&r.endpoint).copied().unwrap_or_default();
    Service {
        service_id: r.service_id.clone(),
        name: r.name.clone(),
        endpoint: r.endpoint.clone(),
        version: r.version.clone(),
        task_types: r.task_types.clone(),
        call_count: calls,
        last_heartbeat: r.last_heartbeat,
        register_at: r.register_at,
        instance_id: instance_id(&r.endpoint),
        weight: r.weight.unwrap_or(1),
        max_concurrent: r.max_concurrent,
        priority: r.priority.clone().unwrap_or_else(|| "normal".into()),
        healthy,
        in_flight,
        failures,
        heartbeat_age_s: now.saturating_sub(r.last_heartbeat),
        stats: r.stats.clone(),
    }
}

/// Registered instances, one row per endpoint.
#[utoipa::path(get, path = "/services", responses((status = 200, description = "services", body = Services)))]
async fn services(State(s): State<ApiState>) -> Json<Services> {
    let live = live(&s);
    let rows: Vec<Service> = s
        .registry
        .list()
        .iter()
        .map(|r| row(r, &live, s.registry.unix_now()))
        .collect();
    Json(Services {
        total: rows.len(),
        services: rows,
        task_type: None,
    })
}

/// Registered instances of one task type.
#[utoipa::path(get, path = "/services/stats/{task_type}",
    params(("task_type" = String, Path, description = "a task type")),
    responses((status = 200, description = "services", body = Services)))]
async fn services_of(State(s): State<ApiState>, Path(task): Path<String>) -> Json<Services> {
    let live = live(&s);
    let rows: Vec<Service> = s
        .registry
        .list()
        .iter()
        .filter(|r| r.task_types.contains(&task))
        .map(|r| row(r, &live, s.registry.unix_now()))
        .collect();
    Json(Services {
        total: rows.len(),
        services: rows,
        task_type: Some(task),
    })
}

/// The registrations grouped by task type (one registration under each of
/// its task types).
fn by_task(recs: &[Record]) -> BTreeMap<String, Vec<&Record>> {
    let mut by_task: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in recs {
        for t in &r.task_types {
            by_task.entry(t.clone()).or_default().push(r);
        }
    }
    by_task
}

/// Per task type: instances with weights and call counts, and how even the calls are.
fn balance(recs: &[Record], live: &Live) -> BTreeMap<String, TaskBalance> {
    by_task(recs)
        .into_iter()
        .map(|(task, rs)| {
            let calls: Vec<f64> = rs
                .iter()
                .map(|r| live.get(&r.endpoint).map_or(0, |l| l.0) as f64)
                .collect();
            let n = calls.len() as f64;
            let avg = calls.iter().sum::<f64>() / n;
            let variance = calls.iter().map(|c| (c - avg).powi(2)).sum::<f64>() / n;
            let min = calls.iter().copied().fold(f64::INFINITY, f64::min);
            let max = calls.iter().copied().fold(0.0, f64::max);
            // 1 = perfectly even; falls with the coefficient of variation.
            let quality = if avg > 0.0 {
                (1.0 - variance.sqrt() / avg).max(0.0)
            } else {
                1.0
            };
            let instances: Vec<BalanceInstance> = rs
                .iter()
                .zip(&calls)
                .map(|(r, c)| BalanceInstance {
                    service_id: r.service_id.clone(),
                    endpoint: r.endpoint.clone(),
                    weight: r.weight.unwrap_or(1),
                    call_count: *c as u64,
                })
                .collect();
            let v = TaskBalance {
                instances,
                instance_count: rs.len(),
                total_calls: calls.iter().sum::<f64>() as u64,
                min_calls: min as u64,
                max_calls: max as u64,
                avg_calls: avg,
                variance,
                balance_quality: quality,
                verdict: None,
            };
            (task, v)
        })
        .collect()
}

/// RFC 3339 (UTC, seconds) of the gateway's clock now.
fn updated_at(s: &ApiState) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.registry.unix_now());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The platform console's view of one task type (its current shape):
/// services with weight, calls, share of the task type's calls in percent
/// and mean response time.
fn console_balance(s: &ApiState, recs: &[Record], live: &Live) -> BTreeMap<String, ConsoleTask> {
    let snap = s.registry.gateway.snapshot();
    let at = updated_at(s);
    by_task(recs)
        .into_iter()
        .map(|(task, rs)| {
            let calls: Vec<u64> = rs
                .iter()
                .map(|r| live.get(&r.endpoint).map_or(0, |l| l.0))
                .collect();
            let total: u64 = calls.iter().sum();
            let services: Vec<ConsoleService> = rs
                .iter()
                .zip(&calls)
                .map(|(r, &c)| {
                    let avg = snap
                        .instances
                        .get(&r.endpoint)
                        .and_then(|i| i.latency.mean_ms())
                        .unwrap_or(0.0);
                    let ratio = if total > 0 {
                        c as f64 * 100.0 / total as f64
                    } else {
                        0.0
                    };
                    ConsoleService {
                        endpoint: r.endpoint.clone(),
                        service_id: r.service_id.clone(),
                        name: r.name.clone(),
                        avg_response_ms: avg,
                        weight: r.weight.unwrap_or(1),
                        call_count: c,
                        allocation_ratio: ratio,
                        has_data: c > 0,
                    }
                })
                .collect();
            let v = ConsoleTask {
                task_type: task.clone(),
                total_services: rs.len(),
                total_weight: rs.iter().map(|r| u64::from(r.weight.unwrap_or(1))).sum(),
                updated_at: at.clone(),
                services,
            };
            (task, v)
        })
        .collect()
}

/// Per task type: instances, weights, call counts and evenness.
#[utoipa::path(get, path = "/load_balance/info", responses((status = 200, description = "info", body = BalanceInfo)))]
async fn balance_info(State(s): State<ApiState>) -> Json<BalanceInfo> {
    let (recs, live) = (s.registry.list(), live(&s));
    let console = console_balance(&s, &recs, &live);
    Json(BalanceInfo {
        task_types: balance(&recs, &live),
        total_task_types: console.len(),
        load_balance: console,
    })
}

/// The same with a verdict per task type.
#[utoipa::path(get, path = "/load_balance/analysis", responses((status = 200, description = "analysis", body = Analysis)))]
async fn balance_analysis(State(s): State<ApiState>) -> Json<Analysis> {
    let mut analysis = balance(&s.registry.list(), &live(&s));
    for v in analysis.values_mut() {
        let q = v.balance_quality;
        v.verdict = Some(if q >= 0.9 {
            "good"
        } else if q >= 0.7 {
            "fair"
        } else {
            "poor"
        });
    }
    Json(Analysis { analysis })
}

/// Requests dropped by each pool's queue (full, or timed out), by pool.
fn dropped(s: &ApiState) -> HashMap<String, u64> {
    let snap = s.registry.gateway.snapshot();
    snap.pools
        .iter()
        .map(|p| {
            (
                p.cfg.name.clone(),
                p.waiters
                    .rejected
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .collect()
}

/// Totals since the last reset, in Fulcrum's fields and the platform console's.
#[utoipa::path(get, path = "/inference_stats", responses((status = 200, description = "stats", body = InferenceStats)))]
async fn inference_stats(State(s): State<ApiState>) -> Json<InferenceStats> {
    let live = live(&s);
    let snap = s.registry.gateway.snapshot();
    let base = s.baseline.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let recs = s.registry.list();
    let (mut total, mut failed, mut active) = (0u64, 0u64, 0u64);
    let (mut max_concurrent, mut lat_sum, mut lat_n, mut lat_max) = (0u64, 0f64, 0u64, 0f64);
    let mut tasks = std::collections::BTreeSet::new();
    for r in &recs {
        let (calls, fails, _, in_flight) = live.get(&r.endpoint).copied().unwrap_or_default();
        let (c0, f0) = base.calls.get(&r.endpoint).copied().unwrap_or_default();
        total += calls.saturating_sub(c0);
        failed += fails.saturating_sub(f0);
        active += u64::from(in_flight);
        max_concurrent += u64::from(r.max_concurrent.unwrap_or(0));
        if let Some(i) = snap.instances.get(&r.endpoint) {
            let n = i.latency.count();
            if let Some(m) = i.latency.mean_ms() {
                lat_sum += m * n as f64;
                lat_n += n;
            }
            lat_max = lat_max.max(i.latency.max_ms().unwrap_or(0.0));
        }
        tasks.extend(r.task_types.iter().cloned());
    }
    // The queues of the pools registered services are in.
    let (mut queue_size, mut queue_max, mut dropped_total) = (0u64, 0u64, 0u64);
    let now_dropped = dropped(&s);
    for t in &tasks {
        if let Some(p) = snap.pool(t) {
            queue_size += u64::from(p.waiters.waiting.load(std::sync::atomic::Ordering::Relaxed));
            queue_max += u64::from(p.cfg.queue.max);
            let d0 = base.dropped.get(t).copied().unwrap_or_default();
            dropped_total += now_dropped
                .get(t)
                .copied()
                .unwrap_or_default()
                .saturating_sub(d0);
        }
    }
    let ok = total.saturating_sub(failed);
    let rate = if total > 0 {
        ok as f64 / total as f64
    } else {
        1.0
    };
    let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    let secs =
        (s.registry.gateway.clock.now_ms().saturating_sub(base.at_ms) as f64 / 1000.0).max(1e-3);
    Json(InferenceStats {
        // Fulcrum's own fields.
        total_requests: total,
        successes: ok,
        failures: failed,
        success_rate: rate,
        // The platform console's current shape.
        total_inferences: total,
        success_inferences: ok,
        failed_inferences: failed,
        avg_inference_ms: if lat_n > 0 {
            lat_sum / lat_n as f64
        } else {
            0.0
        },
        max_inference_ms: lat_max,
        active_inferences: active,
        max_concurrent_infer: max_concurrent,
        queue_size,
        queue_max_size: queue_max,
        queue_utilization: ratio(queue_size, queue_max),
        drop_rate: ratio(dropped_total, total + dropped_total),
        processed_total: total,
        dropped_total,
        success_rate_per_sec: ok as f64 / secs,
        request_rate_per_sec: (total + dropped_total) as f64 / secs,
        response_rate_per_sec: total as f64 / secs,
        updated_at: updated_at(&s),
    })
}

/// Start the totals over.
///
/// Needs admin.token when set (else registry.token when set).
#[utoipa::path(post, path = "/inference_stats/reset",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "reset", body = Reset),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
    ))]
async fn inference_reset(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Admin) {
        return error(st, m);
    }
    let live = live(&s);
    *s.baseline.lock().unwrap_or_else(|e| e.into_inner()) = Baseline {
        calls: live
            .into_iter()
            .map(|(k, (c, f, _, _))| (k, (c, f)))
            .collect(),
        dropped: dropped(&s),
        at_ms: s.registry.gateway.clock.now_ms(),
    };
    Json(Reset {
        ok: true,
        message: "inference statistics reset".into(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
