//! TLS settings: the top-level `tls:` (termination on the proxy
//! listener) and a pool's `tls:` (verification of `https://` instances).
//!
//! Only the settings are checked here, before any file is read: a file
//! setting must name a file. Reading and parsing the PEM files is the
//! dataplane's (`fulcrum_dataplane::tls::check`).

use super::errors::Errors;
use crate::file::{FileListenerTls, FileUpstreamTls};
use crate::model::{ListenerTls, UpstreamTls};
use serde_yaml_ng::Value;

/// The error for a TLS file setting that names no file.
const NOT_EMPTY_PEM: &str = "must not be empty; name a PEM file";

/// Reads the top-level `tls:` section. Its files must be named: an empty
/// `cert` or `key` is reported here, with every other error, even when the
/// section is otherwise incomplete, and never reaches a file read.
pub(super) fn read_listener_tls(v: Value, errs: &mut Errors) -> Option<FileListenerTls> {
    if let Value::Mapping(m) = &v {
        for key in ["cert", "key"] {
            if let Some(Value::String(s)) = m.get(key) {
                if s.trim().is_empty() {
                    errs.push(&format!("tls.{key}"), NOT_EMPTY_PEM.into());
                }
            }
        }
    }
    errs.section(v, "tls")
}

/// The listener's settings, already checked by [`read_listener_tls`].
pub(super) fn build_listener_tls(t: FileListenerTls) -> ListenerTls {
    ListenerTls {
        cert: t.cert.into(),
        key: t.key.into(),
    }
}

/// A pool's `tls:` (`path` is the pool's).
pub(super) fn build_upstream_tls(
    t: Option<FileUpstreamTls>,
    path: &str,
    errs: &mut Errors,
) -> UpstreamTls {
    let t = t.unwrap_or_default();
    if t.ca.as_deref().is_some_and(|c| c.trim().is_empty()) {
        errs.push(&format!("{path}.tls.ca"), NOT_EMPTY_PEM.into());
    }
    if let Some(n) = &t.server_name {
        if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
            errs.push(
                &format!("{path}.tls.server_name"),
                format!("`{n}` is not a DNS name or IP address"),
            );
        }
    }
    UpstreamTls {
        ca: t.ca.map(Into::into),
        server_name: t.server_name,
    }
}
