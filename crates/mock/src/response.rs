//! Building answers: every response carries its content type and
//! `x-mock-instance`, plus `endpoint-load-metrics` when a load report is set.
//! Shared by the routes (`handler`) and the admin routes (`admin`).

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::MockBody;
use crate::state::Shared;

pub(crate) const X_MOCK_INSTANCE: HeaderName = HeaderName::from_static("x-mock-instance");
pub(crate) const JSON: &str = "application/json";

/// Builds a response carrying the content type and `x-mock-instance`.
pub(crate) fn respond(
    shared: &Shared,
    status: StatusCode,
    content_type: &'static str,
    body: MockBody,
) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
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
