//! Instance endpoints: the URLs of `instances[].endpoint` and of
//! registered instances.

use crate::defaults::{HTTPS_PORT, HTTP_PORT, MAX_ENDPOINT_LEN};
use crate::model::Endpoint;

/// Validates an instance endpoint: an absolute `http://` URL with a host, no
/// credentials, no query or fragment.
pub fn parse_endpoint(raw: &str) -> Result<Endpoint, String> {
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err(format!(
            "endpoint URL is longer than {MAX_ENDPOINT_LEN} characters"
        ));
    }
    let uri: http::Uri = raw
        .parse()
        .map_err(|e| format!("`{raw}` is not a valid URL ({e})"))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| format!("`{raw}` needs a scheme, e.g. `http://{raw}`"))?;
    let default_port = match scheme {
        "http" => HTTP_PORT,
        "https" => HTTPS_PORT,
        other => {
            return Err(format!(
                "`{raw}`: scheme `{other}` is not supported; use http:// or https://"
            ))
        }
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("`{raw}` has no host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "`{raw}` contains credentials; endpoints must not carry a user or password"
        ));
    }
    if auth.host().is_empty() {
        return Err(format!("`{raw}` has no host"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(format!("`{raw}` must not have a query or fragment"));
    }
    let host = auth.host();
    if looks_like_ipv4(host) && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("`{raw}`: `{host}` is not a valid IPv4 address"));
    }
    let port = port_of(auth.as_str(), host)
        .map_err(|e| format!("`{raw}`: {e}"))?
        .unwrap_or(default_port);
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        url: raw.to_string(),
        scheme: scheme.to_string(),
        authority: format!("{}:{port}", auth.host()),
        base_path,
    })
}

/// A host made of digits and dots only is meant as an IPv4 address.
fn looks_like_ipv4(host: &str) -> bool {
    !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The explicit port of an authority: `None` when there is none, an
/// error unless it is a whole number from 1 to 65535 (`http::Uri` takes
/// `h:65536` or `h:` and reports no port, which would send traffic to 80).
fn port_of(authority: &str, host: &str) -> Result<Option<u16>, String> {
    let rest = authority.strip_prefix(host).unwrap_or("");
    let Some(digits) = rest.strip_prefix(':') else {
        return Ok(None);
    };
    match digits.parse::<u16>() {
        Ok(p) if p > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(p)),
        _ => Err(format!("port `{digits}` is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_outside_1_to_65535_are_refused() {
        for bad in [
            "http://h:65536/x",
            "http://h:99999",
            "http://h:-1",
            "http://h:",
            "http://h:0",
            "http://h:+80",
            "http://[::1]:70000",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad} was accepted");
        }
        for (ok, authority) in [
            ("http://h:65535", "h:65535"),
            ("http://h", "h:80"),
            ("https://h", "h:443"),
            ("http://[::1]:8000", "[::1]:8000"),
            ("http://[::1]", "[::1]:80"),
            ("http://10.0.0.5:7901/infer", "10.0.0.5:7901"),
        ] {
            assert_eq!(parse_endpoint(ok).unwrap().authority, authority, "{ok}");
        }
    }

    #[test]
    fn dotted_numbers_must_be_an_ipv4_address() {
        for bad in [
            "http://300.1.1.1:80",
            "http://10.0.0:80",
            "http://1.2.3.4.5",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad} was accepted");
        }
    }
}
