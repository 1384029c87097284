//! The registry API's answers, as types: the handlers in `api.rs` build
//! these, serde writes them, and `#[derive(ToSchema)]` describes them in
//! the OpenAPI document, so the document and the answers cannot differ.
//! A new field is a new line here.

use super::HeartbeatStats;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /register`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub ok: bool,
    pub service_id: String,
    pub instance_id: String,
}

/// `POST /heartbeat/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatAnswer {
    pub ok: bool,
    /// How many registrations the id matched.
    pub updated: usize,
    /// Set when the stats body could not be read; liveness was still refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `DELETE /unregister/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unregistered {
    pub ok: bool,
    pub removed: usize,
}

/// `POST /clear_all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cleared {
    pub ok: bool,
    pub cleared_count: usize,
}

/// `POST /inference_stats/reset`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reset {
    pub ok: bool,
    pub message: String,
}

/// One registered instance with its live counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    pub service_id: String,
    pub name: String,
    pub endpoint: String,
    pub version: String,
    pub task_types: Vec<String>,
    pub call_count: u64,
    /// Unix seconds.
    pub last_heartbeat: u64,
    /// Unix seconds.
    pub register_at: u64,
    pub instance_id: String,
    pub weight: u32,
    pub max_concurrent: Option<u32>,
    pub priority: String,
    pub healthy: bool,
    pub in_flight: u32,
    pub failures: u64,
    pub heartbeat_age_s: u64,
    pub stats: Option<HeartbeatStats>,
}

/// `GET /services` and `GET /services/stats/{task_type}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Services {
    pub services: Vec<Service>,
    pub total: usize,
    /// Only on `/services/stats/{task_type}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
}

/// One instance of a task type, in Fulcrum's balance figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceInstance {
    pub service_id: String,
    pub endpoint: String,
    pub weight: u32,
    pub call_count: u64,
}

/// How even the calls of one task type are.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskBalance {
    pub instances: Vec<BalanceInstance>,
    pub instance_count: usize,
    pub total_calls: u64,
    pub min_calls: u64,
    pub max_calls: u64,
    pub avg_calls: f64,
    pub variance: f64,
    /// 1 = perfectly even; falls with the coefficient of variation.
    pub balance_quality: f64,
    /// `good` (quality ≥ 0.9), `fair` (≥ 0.7) or `poor`; only in `/load_balance/analysis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'static str>,
}

/// One service in the platform console's view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleService {
    pub endpoint: String,
    pub service_id: String,
    pub name: String,
    pub avg_response_ms: f64,
    pub weight: u32,
    pub call_count: u64,
    /// Percent of the task type's calls.
    pub allocation_ratio: f64,
    pub has_data: bool,
}

/// The platform console's view of one task type.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleTask {
    pub task_type: String,
    pub total_services: usize,
    pub total_weight: u64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub services: Vec<ConsoleService>,
}

/// `GET /load_balance/info`: Fulcrum's figures (`task_types`) and the
/// platform console's shape (`load_balance`, `total_task_types`).
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceInfo {
    pub task_types: BTreeMap<String, TaskBalance>,
    pub load_balance: BTreeMap<String, ConsoleTask>,
    pub total_task_types: usize,
}

/// `GET /load_balance/analysis`: the balance figures with a verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analysis {
    pub analysis: BTreeMap<String, TaskBalance>,
}

/// `GET /inference_stats`: totals since the last reset, in Fulcrum's
/// fields and in the platform console's.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferenceStats {
    pub total_requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub success_rate: f64,
    pub total_inferences: u64,
    pub success_inferences: u64,
    pub failed_inferences: u64,
    pub avg_inference_ms: f64,
    pub max_inference_ms: f64,
    pub active_inferences: u64,
    pub max_concurrent_infer: u64,
    pub queue_size: u64,
    pub queue_max_size: u64,
    pub queue_utilization: f64,
    pub drop_rate: f64,
    pub processed_total: u64,
    pub dropped_total: u64,
    pub success_rate_per_sec: f64,
    pub request_rate_per_sec: f64,
    pub response_rate_per_sec: f64,
    #[schema(format = DateTime)]
    pub updated_at: String,
}
