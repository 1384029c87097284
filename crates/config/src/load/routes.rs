//! `routes:`: which path prefix (and host) goes to which pool.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_COMPRESSION_ALGORITHMS, DEFAULT_COMPRESSION_MIN_SIZE, DEFAULT_COMPRESSION_TYPES,
    DEFAULT_PRIORITY_HEADER, DEFAULT_ROUTE_CLASS, DEFAULT_STRIP_PREFIX,
};
use crate::file::{FileCompression, FileRoute};
use crate::model::{Compression, ContentCoding, Pool, Route};
use fulcrum_policy::RequestClass;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashSet};

/// Reads `routes:`, each route on its own, with its index.
pub(super) fn read_routes(v: Value, errs: &mut Errors) -> Vec<(usize, FileRoute)> {
    let mut routes = vec![];
    match v {
        Value::Sequence(s) => {
            for (i, r) in s.into_iter().enumerate() {
                if let Some(r) = errs.section::<FileRoute>(r, &format!("routes[{i}]")) {
                    routes.push((i, r));
                }
            }
        }
        Value::Null => {}
        _ => errs.push("routes", "expected a list of routes".into()),
    }
    routes
}

/// Checks each route against the others and the pools.
pub(super) fn build_routes(
    routes: Vec<(usize, FileRoute)>,
    pools: &BTreeMap<String, Pool>,
    errs: &mut Errors,
) -> Vec<Route> {
    let mut out = vec![];
    let mut seen = HashSet::new();
    for (i, r) in routes {
        let path = format!("routes[{i}]");
        if !r.path_prefix.starts_with('/') {
            errs.push(&format!("{path}.path_prefix"), "must start with `/`".into());
        }
        if !pools.contains_key(&r.pool) {
            let known: Vec<&str> = pools.keys().map(String::as_str).collect();
            let message = match crate::words::closest(&r.pool, &known) {
                Some(k) => format!("no pool named `{}`; did you mean `{k}`?", r.pool),
                None if known.is_empty() => format!("no pool named `{}` (pools: none)", r.pool),
                None => format!("no pool named `{}` (pools: {})", r.pool, known.join(", ")),
            };
            errs.push(&format!("{path}.pool"), message);
        }
        let host = r.host.map(|h| h.to_ascii_lowercase());
        if !seen.insert((r.path_prefix.clone(), host.clone())) {
            errs.push(
                &format!("{path}.path_prefix"),
                format!("`{}` is routed twice for the same host", r.path_prefix),
            );
        }
        let compression = r
            .compression
            .and_then(|c| build_compression(c, &format!("{path}.compression"), errs));
        let class = match r
            .priority
            .as_deref()
            .map(|p| (p, p.parse::<RequestClass>()))
        {
            None => DEFAULT_ROUTE_CLASS,
            Some((_, Ok(c))) => c,
            Some((p, Err(_))) => {
                errs.push(
                    &format!("{path}.priority"),
                    crate::words::unknown_value("priority", p, RequestClass::NAMES),
                );
                DEFAULT_ROUTE_CLASS
            }
        };
        out.push(Route {
            path_prefix: r.path_prefix,
            pool: r.pool,
            strip_prefix: r.strip_prefix.unwrap_or(DEFAULT_STRIP_PREFIX),
            host,
            compression,
            class,
            class_header: r.priority_header.unwrap_or(DEFAULT_PRIORITY_HEADER),
        });
    }
    out
}

/// A route's `compression:` — `true` (the defaults), `false`, or a
/// mapping of `types`, `min_size` and `algorithms` over the defaults.
fn build_compression(v: Value, path: &str, errs: &mut Errors) -> Option<Compression> {
    let c = match v {
        Value::Bool(false) | Value::Null => return None,
        Value::Bool(true) => FileCompression::default(),
        v @ Value::Mapping(_) => errs.section::<FileCompression>(v, path)?,
        _ => {
            errs.push(
                path,
                "expected true, false or a mapping { types, min_size, algorithms }".into(),
            );
            return None;
        }
    };
    let types = distinct(
        c.types,
        DEFAULT_COMPRESSION_TYPES,
        &format!("{path}.types"),
        "must name at least one media type",
        errs,
        media_range,
    );
    let algorithms = distinct(
        c.algorithms,
        DEFAULT_COMPRESSION_ALGORITHMS,
        &format!("{path}.algorithms"),
        "must name at least one of zstd, gzip",
        errs,
        |a| {
            ContentCoding::from_name(a)
                .ok_or_else(|| format!("`{a}` is not supported; expected zstd or gzip"))
        },
    );
    Some(Compression {
        types,
        min_size: c.min_size.map_or(DEFAULT_COMPRESSION_MIN_SIZE, |s| s.0),
        algorithms,
    })
}

/// The list at `path` (or `defaults` when absent), each item read by
/// `parse` (an error names its index), without repeats; `empty` is the
/// error for an empty list.
fn distinct<T: PartialEq>(
    given: Option<Vec<String>>,
    defaults: &[&str],
    path: &str,
    empty: &str,
    errs: &mut Errors,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let given = given.unwrap_or_else(|| defaults.iter().map(|&s| s.to_string()).collect());
    let mut out = vec![];
    for (i, item) in given.iter().enumerate() {
        match parse(item) {
            Ok(t) if !out.contains(&t) => out.push(t),
            Ok(_) => {}
            Err(why) => errs.push(&format!("{path}[{i}]"), why),
        }
    }
    if given.is_empty() {
        errs.push(path, empty.into());
    }
    out
}

/// `type/subtype` or `type/*`, lower-cased (RFC 9110 §8.3.1, without
/// parameters). `*/*` is refused: it would compress audio and images,
/// which are compressed already.
fn media_range(t: &str) -> Result<String, String> {
    let lower = t.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match lower.split_once('/') {
        Some(("*", _)) => Err(format!(
            "`{t}`: name the types to compress (`*/*` would include audio and images)"
        )),
        Some((ty, sub)) if token(ty) && !ty.contains('*') && token(sub) => {
            if sub.contains('*') && sub != "*" {
                Err(format!(
                    "`{t}` is not a media type (`*` stands for a whole subtype)"
                ))
            } else {
                Ok(lower)
            }
        }
        _ => Err(format!(
            "`{t}` is not a media type (expected `type/subtype` or `type/*`)"
        )),
    }
}
