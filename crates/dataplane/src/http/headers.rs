//! Header handling on the way through: hop-by-hop removal (RFC 9110 §7.6.1
//! plus the legacy names Go's ReverseProxy also drops), the forwarding
//! headers, and the request id.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A caller's request class (`interactive | normal | batch`), honoured
/// where the route's `priority_header:` allows; forwarded as it came.
pub const X_FULCRUM_PRIORITY: HeaderName = HeaderName::from_static("x-fulcrum-priority");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass of cheap comparisons first: most requests carry none, and
    // nine hashed removals per message showed up in the profile.
    if !h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    // RFC 9112 §6.3: with Transfer-Encoding, a Content-Length is stale;
    // the message is re-framed on the next hop, so it must not travel on.
    if h.contains_key(header::TRANSFER_ENCODING) {
        h.remove(header::CONTENT_LENGTH);
    }
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
}

/// The caller's `X-Request-Id` when it is sane (1–200 visible ASCII
/// characters), otherwise a new random 128-bit hex id.
pub fn request_id(h: &HeaderMap, rng: &crate::clock::Rng) -> HeaderValue {
    if let Some(v) = h.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let mut n = rng.u128();
    for b in id.iter_mut().rev() {
        *b = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    HeaderValue::from_bytes(&id).expect("hex is a valid header value")
}

/// The caller's address as a header value, formatted once per connection.
pub fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value")
}

/// Prepares a caller's headers for an instance: drops hop-by-hop headers
/// and `Host` (the client sets the instance's), and adds the forwarding
/// headers and the request id. `ip` comes from [`ip_value`].
pub fn to_upstream(
    h: &mut HeaderMap,
    authority: Option<&http::uri::Authority>,
    ip: &HeaderValue,
    proto: &'static str,
    request_id: &HeaderValue,
) {
    strip_hop_by_hop(h);
    // HTTP/2 callers name the host in `:authority`, not in a header.
    let host = h
        .remove(header::HOST)
        .or_else(|| authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    if let Some(host) = host {
        h.insert(X_FORWARDED_HOST, host);
    }
    // Every earlier hop, however many header lines carried them, then ours.
    let mut prev = h
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter(|v| !v.is_empty())
        .peekable();
    let xff = if prev.peek().is_none() {
        Some(ip.clone())
    } else {
        let mut v = Vec::with_capacity(64);
        for p in prev {
            v.extend_from_slice(p.as_bytes());
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(ip.as_bytes());
        HeaderValue::from_bytes(&v).ok()
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR, v);
    }
    h.insert(X_REAL_IP, ip.clone());
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    h.insert(X_REQUEST_ID, request_id.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarding_headers_append_and_set() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "gw.example:8080".parse().unwrap());
        h.insert(X_FORWARDED_FOR, "10.0.0.1".parse().unwrap());
        let rid = HeaderValue::from_static("r1");
        to_upstream(
            &mut h,
            None,
            &ip_value("192.168.1.9".parse().unwrap()),
            "http",
            &rid,
        );
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 192.168.1.9");
        assert_eq!(h[X_REAL_IP], "192.168.1.9");
        assert_eq!(h[X_FORWARDED_HOST], "gw.example:8080");
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_REQUEST_ID], "r1");
        assert!(!h.contains_key(header::HOST));
    }

    #[test]
    fn every_forwarded_for_line_and_connection_line_counts() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "10.0.0.1".parse().unwrap());
        h.append(X_FORWARDED_FOR, "10.0.0.2".parse().unwrap());
        h.append(header::CONNECTION, "x-a".parse().unwrap());
        h.append(header::CONNECTION, "x-b".parse().unwrap());
        h.insert("x-a", "1".parse().unwrap());
        h.insert("x-b", "1".parse().unwrap());
        let authority: http::uri::Authority = "h2.example".parse().unwrap();
        to_upstream(
            &mut h,
            Some(&authority),
            &ip_value("10.0.0.3".parse().unwrap()),
            "http",
            &HeaderValue::from_static("r"),
        );
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2, 10.0.0.3");
        assert!(!h.contains_key("x-a") && !h.contains_key("x-b"));
        assert_eq!(h[X_FORWARDED_HOST], "h2.example");
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_generated_otherwise() {
        let rng = crate::clock::Rng::default();
        let mut h = HeaderMap::new();
        let a = request_id(&h, &rng);
        assert_eq!(a.len(), 32);
        assert_ne!(a, request_id(&h, &rng));
        h.insert(X_REQUEST_ID, "abc-123".parse().unwrap());
        assert_eq!(request_id(&h, &rng), "abc-123");
        h.insert(X_REQUEST_ID, "has space".parse().unwrap());
        assert_ne!(request_id(&h, &rng), "has space");
    }
}
