//! The admin listener (minimal for now): liveness, readiness and a JSON
//! view of every pool and instance with live counters.
//!
//! * `GET /healthz` — the process answers.
//! * `GET /readyz` — the proxy listener is bound and serving.
//! * `GET /api/v1/pools` — pools, their instances, health, in-flight,
//!   requests, failures, ejections.

use axum::extract::State;
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
}

pub fn router(state: AdminState) -> Router {
    let registry = state.registry.clone();
    let r = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/api/v1/pools", get(pools))
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

async fn pools(State(s): State<AdminState>) -> Response {
    Json(serde_json::json!({ "pools": s.gateway.stats() })).into_response()
}
