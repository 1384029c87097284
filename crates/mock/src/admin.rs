//! The `/__mock/*` admin routes, used by the binary-driven demo and benchmarks
//! to observe and steer an instance running in another process.
//!
//! * `GET /__mock/stats` — counters and current settings as JSON.
//! * `POST /__mock/control` — JSON object with any of `healthy` (bool),
//!   `mode` (`normal|hang|500|reset|garbage`), `latency` (humantime, e.g.
//!   `"50ms"`), `latency_max` (makes it uniform), `lognormal_sigma` (makes it
//!   log-normal around `latency`) and `error_rate` (0..=1). Everything is
//!   validated before anything is applied.
//! * `POST /__mock/reset` — zeroes the counters.
//!
//! Admin routes ignore latency, capacity and failure modes and are not counted.

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::body::MockBody;
use crate::response::{respond, JSON};
use crate::state::Shared;
use crate::{FailureMode, Latency};

/// Largest accepted control document.
const MAX_CONTROL_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    healthy: Option<bool>,
    mode: Option<String>,
    latency: Option<String>,
    latency_max: Option<String>,
    lognormal_sigma: Option<f64>,
    error_rate: Option<f64>,
}

pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<MockBody> {
    let route = (req.method().clone(), req.uri().path());
    match route {
        (Method::GET, "/__mock/stats") => reply(shared, StatusCode::OK, stats_json(shared)),
        (Method::POST, "/__mock/reset") => {
            shared.reset_stats();
            reply(shared, StatusCode::OK, stats_json(shared))
        }
        (Method::POST, "/__mock/control") => match control(shared, req).await {
            Ok(()) => reply(shared, StatusCode::OK, stats_json(shared)),
            Err(msg) => {
                let doc = serde_json::json!({ "error": msg });
                reply(shared, StatusCode::BAD_REQUEST, doc)
            }
        },
        _ => {
            let doc = serde_json::json!({ "error": "unknown admin route" });
            reply(shared, StatusCode::NOT_FOUND, doc)
        }
    }
}

fn reply(shared: &Shared, status: StatusCode, doc: serde_json::Value) -> Response<MockBody> {
    respond(shared, status, JSON, MockBody::full(doc.to_string()))
}

fn stats_json(shared: &Shared) -> serde_json::Value {
    let s = shared.stats();
    serde_json::json!({
        "name": shared.name,
        "requests": s.requests,
        "in_flight": s.in_flight,
        "max_in_flight": s.max_in_flight,
        "health_checks": s.health_checks,
        "errors": s.errors,
        "connections": s.connections,
        "healthy": shared.healthy(),
        "mode": shared.mode().as_str(),
        "latency": format!("{:?}", shared.latency()),
        "error_rate": shared.error_rate(),
    })
}

async fn control(shared: &Shared, req: Request<Incoming>) -> Result<(), String> {
    let body = Limited::new(req.into_body(), MAX_CONTROL_BYTES)
        .collect()
        .await
        .map_err(|e| format!("cannot read body: {e}"))?
        .to_bytes();
    let ctl: Control =
        serde_json::from_slice(&body).map_err(|e| format!("invalid control document: {e}"))?;
    let mode = ctl
        .mode
        .as_deref()
        .map(str::parse::<FailureMode>)
        .transpose()?;
    let latency = match (&ctl.latency, &ctl.latency_max, ctl.lognormal_sigma) {
        (None, None, None) => None,
        (None, _, _) => return Err("latency_max and lognormal_sigma need latency".into()),
        (Some(base), max, sigma) => {
            let max = max.as_deref().map(parse_duration).transpose()?;
            Some(Latency::from_parts(parse_duration(base)?, max, sigma)?)
        }
    };
    if let Some(r) = ctl.error_rate {
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("error_rate must be within 0..=1, got {r}"));
        }
    }
    if let Some(ok) = ctl.healthy {
        shared.set_healthy(ok);
    }
    if let Some(mode) = mode {
        shared.set_mode(mode);
    }
    if let Some(l) = latency {
        shared.set_latency(l);
    }
    if let Some(r) = ctl.error_rate {
        shared.set_error_rate(r);
    }
    Ok(())
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}
