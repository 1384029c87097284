//! The page itself: three files compiled into the binary
//! (`assets/index.html`, `dashboard.js`, `dashboard.css`), served with a
//! Content-Security-Policy that allows nothing but this origin's own files
//! and API: no inline script, no other host, no framing. The script
//! renders every value a registration or an instance sent (names,
//! endpoints, task types) as text (`textContent`), never as HTML.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Only this origin's files and API; nothing inline, nothing framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            // A new binary may ship a new page: always ask.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The dashboard (README: "Dashboard").
#[utoipa::path(get, path = "/", responses(
    (status = 200, description = "the dashboard page", content_type = "text/html", body = String)))]
pub async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script and style sheet.
#[utoipa::path(get, path = "/ui/{file}",
    params(("file" = String, Path, description = "dashboard.js or dashboard.css")),
    responses(
        (status = 200, description = "the file", content_type = "text/plain", body = String),
        (status = 404, description = "no such file", body = crate::openapi::ErrorBody),
    ))]
pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "dashboard.js" => file("text/javascript; charset=utf-8", SCRIPT),
        "dashboard.css" => file("text/css; charset=utf-8", STYLE),
        _ => crate::openapi::ErrorBody::response(StatusCode::NOT_FOUND, "no such dashboard file"),
    }
}
