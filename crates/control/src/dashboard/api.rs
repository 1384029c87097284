//! The dashboard's routes: the page and its files ([`super::page`]), and
//! two read-only endpoints of the admin API:
//!
//! * `GET /api/v1/history?pool=&since=` — the charts' samples
//!   ([`super::history`]); `since` (ms since the Unix epoch) gives only
//!   newer samples, so a page polls for what it has not seen.
//! * `GET /api/v1/events?after=&limit=` — the gateway's event log, oldest
//!   first, after sequence number `after`.

use super::history::HistoryView;
use super::page;
use super::Dashboard;
use crate::openapi::ErrorBody;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::Router;
use fulcrum_dataplane::runtime::events::Event;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most events one answer gives.
pub const MAX_EVENTS: usize = 1000;

/// The dashboard's routes and their part of the OpenAPI document.
pub fn routes(d: Arc<Dashboard>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::new()
        .routes(routes!(page::index))
        .routes(routes!(page::asset))
        .routes(routes!(history))
        .routes(routes!(events))
        .split_for_parts();
    (router.with_state(d), doc)
}

/// Which samples `GET /api/v1/history` gives.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this pool.
    pool: Option<String>,
    /// Only samples taken after this time (ms since the Unix epoch).
    since: Option<u64>,
}

/// The last 15 minutes of every pool and instance (req/s, p99, in-flight,
/// queue length), sampled every 2 s.
#[utoipa::path(get, path = "/api/v1/history", params(HistoryQuery),
    responses(
        (status = 200, description = "samples", body = HistoryView),
        (status = 400, description = "`since` is not a whole number", body = ErrorBody),
    ))]
async fn history(
    State(d): State<Arc<Dashboard>>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(&e),
    };
    let view = d.history().view(q.pool.as_deref(), q.since.unwrap_or(0));
    Json(view).into_response()
}

/// A query that does not parse: 400 with the usual JSON error body.
fn bad_query(e: &QueryRejection) -> Response {
    ErrorBody::response(StatusCode::BAD_REQUEST, e.body_text())
}

/// Which events `GET /api/v1/events` gives.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a greater sequence number.
    after: Option<u64>,
    /// At most this many (default and most: 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    /// Oldest first.
    pub events: Vec<Event>,
    /// The last sequence number so far: ask with `after` = this next time.
    pub last_seq: u64,
}

/// What happened to the fleet: health flips, ejections, cool-downs,
/// drains, weights, registrations, expiries, reloads (the last 1000).
#[utoipa::path(get, path = "/api/v1/events", params(EventsQuery),
    responses(
        (status = 200, description = "events", body = Events),
        (status = 400, description = "`after` or `limit` is not a whole number", body = ErrorBody),
    ))]
async fn events(
    State(d): State<Arc<Dashboard>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(&e),
    };
    let limit = q.limit.unwrap_or(MAX_EVENTS).min(MAX_EVENTS);
    let (events, last_seq) = d.gateway.events.after(q.after.unwrap_or(0), limit);
    Json(Events { events, last_seq }).into_response()
}
