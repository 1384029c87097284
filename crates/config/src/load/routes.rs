//! `routes:`: which path prefix (and host) goes to which pool.

use super::errors::Errors;
use crate::defaults::{DEFAULT_PRIORITY_HEADER, DEFAULT_ROUTE_CLASS, DEFAULT_STRIP_PREFIX};
use crate::file::FileRoute;
use crate::model::{Pool, Route};
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
            class,
            class_header: r.priority_header.unwrap_or(DEFAULT_PRIORITY_HEADER),
        });
    }
    out
}
