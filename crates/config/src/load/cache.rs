//! A pool's `cache:`: the response cache.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_CACHE_ENTRY, DEFAULT_CACHE_METHODS, DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL,
};
use crate::file::FileCache;
use crate::model::CacheConfig;

/// A pool's `cache:` (`path` is the pool's).
pub(super) fn build_cache(c: FileCache, path: &str, errs: &mut Errors) -> CacheConfig {
    let path = format!("{path}.cache");
    let ttl = c.ttl.map_or(DEFAULT_CACHE_TTL, |d| d.0);
    if ttl.is_zero() {
        errs.push(&format!("{path}.ttl"), "must be greater than 0".into());
    }
    let max_size = c.max_size.map_or(DEFAULT_CACHE_SIZE, |s| s.0);
    if max_size == 0 {
        errs.push(&format!("{path}.max_size"), "must be greater than 0".into());
    }
    let max_entry_size = c
        .max_entry_size
        .map_or(DEFAULT_CACHE_ENTRY.min(max_size), |s| s.0);
    if max_entry_size == 0 || max_entry_size > max_size {
        errs.push(
            &format!("{path}.max_entry_size"),
            format!("must be between 1 and max_size ({max_size} bytes)"),
        );
    }
    let mut methods = vec![];
    let written: Vec<String> = match c.methods {
        Some(list) => list.into_iter().map(|t| t.0).collect(),
        None => DEFAULT_CACHE_METHODS.iter().map(|&m| m.into()).collect(),
    };
    for (i, m) in written.iter().enumerate() {
        let up = m.to_ascii_uppercase();
        match up.as_str() {
            "GET" | "POST" => {
                let m = http::Method::from_bytes(up.as_bytes()).expect("a valid method");
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
            _ => errs.push(
                &format!("{path}.methods[{i}]"),
                match crate::words::closest(&up, &["GET", "POST"]) {
                    Some(s) => format!("`{m}` cannot be cached; did you mean `{s}`?"),
                    None => format!("`{m}` cannot be cached; expected GET or POST"),
                },
            ),
        }
    }
    // Only when none was written: a bad one is its own error already.
    if written.is_empty() {
        errs.push(
            &format!("{path}.methods"),
            "must name at least one method".into(),
        );
    }
    CacheConfig {
        ttl,
        max_size,
        max_entry_size,
        methods,
    }
}
