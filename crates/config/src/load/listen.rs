//! The listeners: `listen:`, `admin:`, `limits:` and the one listener
//! timeout, `timeouts.client_header`.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_CLIENT_HEADER_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER, MIN_MAX_HEADER,
};
use crate::file::{FileAdmin, FileLimits, FileTimeouts};
use crate::model::{Admin, Limits};
use std::net::SocketAddr;
use std::time::Duration;

/// `listen:`; `None` after an error.
pub(super) fn listen_addr(listen: Option<&str>, errs: &mut Errors) -> Option<SocketAddr> {
    addr("listen", listen.unwrap_or(DEFAULT_LISTEN), errs)
}

/// `admin:`; `None` after an error in its address.
pub(super) fn build_admin(admin: FileAdmin, errs: &mut Errors) -> Option<Admin> {
    let listen = addr(
        "admin.listen",
        admin.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN),
        errs,
    );
    let token = admin.token.filter(|t| !t.is_empty());
    Some(Admin {
        listen: listen?,
        token,
    })
}

pub(super) fn build_limits(limits: FileLimits, errs: &mut Errors) -> Limits {
    let limits = Limits {
        max_body: limits.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
        max_header: limits.max_header.map_or(DEFAULT_MAX_HEADER, |s| s.0),
        max_connections: limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
    };
    if limits.max_header < MIN_MAX_HEADER {
        errs.push(
            "limits.max_header",
            format!("must be at least {}KiB", MIN_MAX_HEADER >> 10),
        );
    }
    if limits.max_connections == 0 {
        errs.push("limits.max_connections", "must be at least 1".into());
    }
    limits
}

/// The top-level `timeouts.client_header` (pools may not set it).
pub(super) fn client_header(timeouts: &FileTimeouts, errs: &mut Errors) -> Duration {
    let client_header = timeouts
        .client_header
        .map_or(DEFAULT_CLIENT_HEADER_TIMEOUT, |d| d.0);
    if client_header.is_zero() {
        errs.push("timeouts.client_header", "must be greater than 0".into());
    }
    client_header
}

fn addr(path: &str, s: &str, errs: &mut Errors) -> Option<SocketAddr> {
    match s.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(
                path,
                format!("`{s}` is not an address like `0.0.0.0:8080` or `[::1]:8080`"),
            );
            None
        }
    }
}
