//! The admin API's OpenAPI document, generated (a leaf: the admin and
//! registry handlers name it, it names none of them).
//!
//! Nothing here lists a path or a field. Each handler carries its
//! `#[utoipa::path(...)]` (method, path, parameters, body, every status it
//! answers with its body type), each request and answer body is a Rust
//! type with `#[derive(ToSchema)]`, and `admin::router` registers every
//! handler with `utoipa_axum::routes!`, which serves the route and adds its
//! operation to [`ApiDoc`] in one step. What is left for this module is
//! the document's frame: its title and description, the bearer-token
//! security scheme, and the error body every handler shares.
//!
//! The document is OpenAPI 3.1 (utoipa's output; schemathesis checks the
//! live API against it, `scripts/openapi-check`).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The name of the bearer-token security scheme, for
/// `security(("bearer" = []))` on the calls that need a token.
pub const BEARER: &str = "bearer";

/// The frame of the document; `admin::router` adds every operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fulcrum admin API",
        description = "The admin listener of the Fulcrum gateway: liveness, live stats, \
            operator overrides, and the video-analysis platform's registry API (paths under \
            /api/v1/ai_analysis are compatible with it). Mutating native calls need \
            `Authorization: Bearer <admin.token>` when a token is set; registry calls need \
            `registry.token` when set. This document is generated from the handlers' types."
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every error answer: `{"error": …}`, with `"ok": false` on the registry
/// API (the platform's shape).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    pub error: String,
}

impl ErrorBody {
    /// `status` with `{"error": msg}`: the native API's (and the
    /// dashboard's) error answer.
    pub fn response(
        status: axum::http::StatusCode,
        msg: impl Into<String>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let body = ErrorBody {
            ok: None,
            error: msg.into(),
        };
        (status, axum::Json(body)).into_response()
    }
}
