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
    let port = auth.port_u16().unwrap_or(default_port);
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        url: raw.to_string(),
        scheme: scheme.to_string(),
        authority: format!("{}:{port}", auth.host()),
        base_path,
    })
}
