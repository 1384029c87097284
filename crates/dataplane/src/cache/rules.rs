//! RFC 9111's storability rules as they apply to a shared cache of
//! complete `200` answers: `Cache-Control` directives, `Authorization`
//! (§3.5), `Set-Cookie`, `Vary`.

use fulcrum_config::CacheConfig;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use std::time::Duration;

/// The `Cache-Control` directives that matter here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    /// `public` or `must-revalidate`: shareable even if the request carried
    /// credentials (RFC 9111 §3.5; `s-maxage` counts too).
    pub shareable: bool,
    /// `s-maxage`, else `max-age`, in seconds.
    pub max_age: Option<u64>,
}

impl Directives {
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut d = Directives::default();
        let mut s_maxage = None;
        let mut max_age = None;
        for v in headers.get_all(header::CACHE_CONTROL) {
            let Ok(v) = v.to_str() else { continue };
            for item in v.split(',') {
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                let value = value.trim().trim_matches('"').parse::<u64>().ok();
                match name.trim().to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" | "must-revalidate" => d.shareable = true,
                    "s-maxage" => s_maxage = s_maxage.or(Some(value.unwrap_or(0))),
                    "max-age" => max_age = max_age.or(Some(value.unwrap_or(0))),
                    _ => {}
                }
            }
        }
        d.shareable |= s_maxage.is_some();
        d.max_age = s_maxage.or(max_age);
        d
    }
}

/// How long a response may be stored, or `None` if it must not be.
/// `authorized`: the request carried `Authorization`; its answer is only
/// shared when the response says so (`public`, `s-maxage`,
/// `must-revalidate`), as RFC 9111 §3.5 requires of a shared cache.
pub fn storable_for(
    cfg: &CacheConfig,
    status: StatusCode,
    headers: &HeaderMap,
    authorized: bool,
) -> Option<Duration> {
    if status != StatusCode::OK || headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    let d = Directives::parse(headers);
    if d.no_store || d.no_cache || d.private || (authorized && !d.shareable) {
        return None;
    }
    // `Vary: *`, or a name that is not a header name, cannot be matched.
    if headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().map_or(true, |v| {
            v.split(',').any(|x| {
                let x = x.trim();
                x == "*" || (!x.is_empty() && HeaderName::from_bytes(x.as_bytes()).is_err())
            })
        })
    }) {
        return None;
    }
    let ttl = match d.max_age {
        Some(s) => cfg.ttl.min(Duration::from_secs(s)),
        None => cfg.ttl,
    };
    (!ttl.is_zero()).then_some(ttl)
}

/// The request headers a response varies on, with the request's values.
pub fn vary_values(resp: &HeaderMap, req: &HeaderMap) -> Vec<(HeaderName, Option<HeaderValue>)> {
    resp.get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .map(|n| {
            let v = req.get(&n).cloned();
            (n, v)
        })
        .collect()
}
