//! Response compression for the routes with `compression:` (nginx's
//! `gzip on` of the seed, with zstd besides gzip).
//!
//! A [`Plan`] is made when a request is routed to such a route: what the
//! caller accepts (`Accept-Encoding`, [`accept`]) and the route's rules.
//! [`maybe`] applies it to the answer, after the response cache (which
//! keeps answers as the instance wrote them, so a hit is compressed for
//! each caller as it asks). A route without `compression:` costs one
//! `Option` check at routing and one here.
//!
//! An answer is **eligible** (nginx's `gzip_types` / `gzip_min_length`,
//! tower-http's predicates) when its `Content-Type` is one of the route's
//! `types`, its `Content-Length`, when known, is at least `min_size`, it
//! has a body, and nothing rules a transformation out: a
//! `Content-Encoding` already there, `Cache-Control: no-transform`, a
//! partial answer (`206`, `Content-Range`), `204`, `304` or a `1xx`. An
//! eligible answer gets `Vary: Accept-Encoding` whatever this caller
//! accepts (a shared cache downstream must not hand a compressed copy to
//! a caller that did not ask); it is compressed when the caller accepts
//! a coding the route offers and the request is not `HEAD`. Then it gets
//! `Content-Encoding`, loses `Content-Length` and `Accept-Ranges` (both
//! described the uncompressed bytes), and a strong `ETag` becomes weak
//! (`W/`), as nginx does: the bytes differ, the meaning does not. The
//! body is streamed by [`body::Compressed`], flushed whenever the instance
//! pauses, so server-sent events stay live.

pub mod accept;
pub mod body;

use super::body::ProxyBody;
use fulcrum_config::{Compression, ContentCoding};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use std::sync::Arc;

/// What one request to a compressing route allows.
#[derive(Debug, Clone)]
pub struct Plan {
    rules: Arc<Compression>,
    /// The coding the caller accepts and prefers; `None`: as it is.
    coding: Option<ContentCoding>,
}

impl Plan {
    /// The plan for a request with `method` and `headers` on a route
    /// compressing by `rules`.
    pub fn new(rules: &Arc<Compression>, method: &Method, headers: &HeaderMap) -> Self {
        let coding = if method == Method::HEAD {
            None
        } else {
            accept::negotiate(headers.get_all(header::ACCEPT_ENCODING), &rules.algorithms)
        };
        Self {
            rules: rules.clone(),
            coding,
        }
    }
}

/// The answer, compressed when `plan` allows it (see the module doc).
/// Inlined, so that a route without compression pays one branch and no
/// move of the response.
#[inline]
pub fn maybe(plan: Option<Plan>, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    match plan {
        Some(plan) => planned(plan, resp),
        None => resp,
    }
}

fn planned(plan: Plan, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    if eligible(&plan.rules, &resp) {
        apply(plan.coding, resp)
    } else {
        resp
    }
}

/// Adds `Vary: Accept-Encoding` to an eligible answer, and compresses it
/// with `coding`.
fn apply(coding: Option<ContentCoding>, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    vary_on_accept_encoding(&mut parts.headers);
    let Some(coding) = coding else {
        return Response::from_parts(parts, body);
    };
    let body = match body::Compressed::new(body, coding) {
        Ok(c) => c.boxed_unsync(),
        // No encoder (out of memory, say): the answer goes out as it is.
        Err(body) => return Response::from_parts(parts, body),
    };
    let h = &mut parts.headers;
    h.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.name()),
    );
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::ACCEPT_RANGES);
    weaken_etag(h);
    Response::from_parts(parts, body)
}

/// Whether the route's rules and the answer allow compressing it.
fn eligible(rules: &Compression, resp: &Response<ProxyBody>) -> bool {
    let h = resp.headers();
    let s = resp.status();
    if s.is_informational()
        || s == StatusCode::NO_CONTENT
        || s == StatusCode::NOT_MODIFIED
        || s == StatusCode::PARTIAL_CONTENT
        || h.contains_key(header::CONTENT_ENCODING)
        || h.contains_key(header::CONTENT_RANGE)
        || resp.body().is_end_stream()
        || no_transform(h)
    {
        return false;
    }
    let len = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(resp.body().size_hint().exact());
    if len.is_some_and(|n| n < rules.min_size) {
        return false;
    }
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| listed(&rules.types, ct))
}

/// Whether the media type of `content_type` (parameters aside) is one
/// of `types` (lower-case `type/subtype` or `type/*`).
fn listed(types: &[String], content_type: &str) -> bool {
    let mt = content_type.split(';').next().unwrap_or_default().trim();
    let Some((ty, _)) = mt.split_once('/') else {
        return false;
    };
    types.iter().any(|t| match t.strip_suffix("/*") {
        Some(range) => range.eq_ignore_ascii_case(ty),
        None => t.eq_ignore_ascii_case(mt),
    })
}

/// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6): no intermediary
/// may change the content's coding.
fn no_transform(h: &HeaderMap) -> bool {
    h.get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// Adds `accept-encoding` to `Vary` unless it is there already (or `Vary`
/// is `*`, which covers it).
fn vary_on_accept_encoding(h: &mut HeaderMap) {
    let covered = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|n| n == "*" || n.eq_ignore_ascii_case("accept-encoding"));
    if !covered {
        h.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// A strong `ETag` becomes weak: `"x"` → `W/"x"`.
fn weaken_etag(h: &mut HeaderMap) {
    let Some(tag) = h.get(header::ETAG) else {
        return;
    };
    if tag.as_bytes().starts_with(b"W/") {
        return;
    }
    let mut weak = Vec::with_capacity(tag.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(tag.as_bytes());
    match HeaderValue::from_bytes(&weak) {
        Ok(v) => h.insert(header::ETAG, v),
        Err(_) => h.remove(header::ETAG),
    };
}

#[cfg(test)]
mod tests;
