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

use super::{instance_id, HeartbeatStats, Record, RegisterRequest, Registry, RegistryError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Largest accepted request body on the registry API.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
    /// Call counts at the last `inference_stats/reset`, by endpoint.
    baseline: Arc<Mutex<HashMap<String, (u64, u64)>>>,
}

pub fn routes(registry: Arc<Registry>) -> Router {
    let state = ApiState {
        registry,
        baseline: Arc::default(),
    };
    Router::new()
        .route("/register", post(register))
        .route("/heartbeat/{id}", post(heartbeat))
        .route("/unregister/{id}", delete(unregister))
        .route("/clear_all", post(clear_all))
        .route("/services", get(services))
        .route("/services/stats/{task_type}", get(services_of))
        .route("/load_balance/info", get(balance_info))
        .route("/load_balance/analysis", get(balance_analysis))
        .route("/inference_stats", get(inference_stats))
        .route("/inference_stats/reset", post(inference_reset))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path",
            )
        })
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"ok": false, "error": msg.into()}))).into_response()
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
        Ok(r) => Json(json!({"ok": true, "service_id": r.service_id, "instance_id": instance_id(&r.endpoint)})).into_response(),
        Err(e) => e.into_response(),
    }
}

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
        Ok(n) => {
            let mut v = json!({"ok": true, "updated": n});
            if let Some(w) = warning {
                v["warning"] = json!(w);
            }
            Json(v).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn unregister(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Either) {
        return error(st, m);
    }
    match s.registry.unregister(&id) {
        Ok(n) => Json(json!({"ok": true, "removed": n})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn clear_all(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Admin) {
        return error(st, m);
    }
    match s.registry.clear() {
        Ok(n) => Json(json!({"ok": true, "cleared_count": n})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Live counters of every instance, by endpoint: (requests, failures, healthy, in_flight).
fn live(s: &ApiState) -> HashMap<String, (u64, u64, bool, u32)> {
    let snap = s.registry.gateway.snapshot();
    let now = s.registry.gateway.clock.now_ms();
    snap.instances
        .iter()
        .map(|(url, i)| {
            let st = i.stats(now);
            (
                url.clone(),
                (
                    st.requests,
                    st.failures,
                    st.healthy && !st.ejected,
                    st.in_flight,
                ),
            )
        })
        .collect()
}

fn row(r: &Record, live: &HashMap<String, (u64, u64, bool, u32)>, now: u64) -> Value {
    let (calls, failures, healthy, in_flight) = live.get(&r.endpoint).copied().unwrap_or_default();
    json!({
        "service_id": r.service_id,
        "name": r.name,
        "endpoint": r.endpoint,
        "version": r.version,
        "task_types": r.task_types,
        "call_count": calls,
        "last_heartbeat": r.last_heartbeat,
        "register_at": r.register_at,
        "instance_id": instance_id(&r.endpoint),
        "weight": r.weight.unwrap_or(1),
        "max_concurrent": r.max_concurrent,
        "priority": r.priority.as_deref().unwrap_or("normal"),
        "healthy": healthy,
        "in_flight": in_flight,
        "failures": failures,
        "heartbeat_age_s": now.saturating_sub(r.last_heartbeat),
        "stats": r.stats,
    })
}

async fn services(State(s): State<ApiState>) -> Response {
    let live = live(&s);
    let rows: Vec<Value> = s
        .registry
        .list()
        .iter()
        .map(|r| row(r, &live, s.registry.unix_now()))
        .collect();
    Json(json!({"services": rows, "total": rows.len()})).into_response()
}

async fn services_of(State(s): State<ApiState>, Path(task): Path<String>) -> Response {
    let live = live(&s);
    let rows: Vec<Value> = s
        .registry
        .list()
        .iter()
        .filter(|r| r.task_types.contains(&task))
        .map(|r| row(r, &live, s.registry.unix_now()))
        .collect();
    Json(json!({"services": rows, "total": rows.len(), "task_type": task})).into_response()
}

/// Per task type: instances with weights and call counts, and how even the calls are.
fn balance(s: &ApiState) -> BTreeMap<String, Value> {
    let live = live(s);
    let mut by_task: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    let recs = s.registry.list();
    for r in &recs {
        for t in &r.task_types {
            by_task.entry(t.clone()).or_default().push(r);
        }
    }
    by_task
        .into_iter()
        .map(|(task, rs)| {
            let calls: Vec<f64> = rs.iter().map(|r| live.get(&r.endpoint).map_or(0, |l| l.0) as f64).collect();
            let n = calls.len() as f64;
            let avg = calls.iter().sum::<f64>() / n;
            let variance = calls.iter().map(|c| (c - avg).powi(2)).sum::<f64>() / n;
            let min = calls.iter().copied().fold(f64::INFINITY, f64::min);
            let max = calls.iter().copied().fold(0.0, f64::max);
            // 1 = perfectly even; falls with the coefficient of variation.
            let quality = if avg > 0.0 { (1.0 - variance.sqrt() / avg).max(0.0) } else { 1.0 };
            let instances: Vec<Value> = rs
                .iter()
                .zip(&calls)
                .map(|(r, c)| json!({"service_id": r.service_id, "endpoint": r.endpoint, "weight": r.weight.unwrap_or(1), "call_count": *c as u64}))
                .collect();
            let v = json!({
                "instances": instances, "instance_count": rs.len(),
                "total_calls": calls.iter().sum::<f64>() as u64,
                "min_calls": min as u64, "max_calls": max as u64, "avg_calls": avg,
                "variance": variance, "balance_quality": quality,
            });
            (task, v)
        })
        .collect()
}

async fn balance_info(State(s): State<ApiState>) -> Response {
    Json(json!({"task_types": balance(&s)})).into_response()
}

async fn balance_analysis(State(s): State<ApiState>) -> Response {
    let b = balance(&s);
    let analysis: BTreeMap<String, Value> = b
        .into_iter()
        .map(|(t, v)| {
            let q = v["balance_quality"].as_f64().unwrap_or(1.0);
            let verdict = if q >= 0.9 {
                "good"
            } else if q >= 0.7 {
                "fair"
            } else {
                "poor"
            };
            let mut v = v;
            v["verdict"] = json!(verdict);
            (t, v)
        })
        .collect();
    Json(json!({"analysis": analysis})).into_response()
}

async fn inference_stats(State(s): State<ApiState>) -> Response {
    let live = live(&s);
    let base = s.baseline.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (mut total, mut failed) = (0u64, 0u64);
    for r in s.registry.list() {
        let (calls, fails, _, _) = live.get(&r.endpoint).copied().unwrap_or_default();
        let (c0, f0) = base.get(&r.endpoint).copied().unwrap_or_default();
        total += calls.saturating_sub(c0);
        failed += fails.saturating_sub(f0);
    }
    let ok = total.saturating_sub(failed);
    let rate = if total > 0 {
        ok as f64 / total as f64
    } else {
        1.0
    };
    Json(
        json!({"total_requests": total, "successes": ok, "failures": failed, "success_rate": rate}),
    )
    .into_response()
}

async fn inference_reset(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err((st, m)) = authorized(&s, &headers, Need::Admin) {
        return error(st, m);
    }
    let live = live(&s);
    *s.baseline.lock().unwrap_or_else(|e| e.into_inner()) = live
        .into_iter()
        .map(|(k, (c, f, _, _))| (k, (c, f)))
        .collect();
    Json(json!({"ok": true})).into_response()
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
