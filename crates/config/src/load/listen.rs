//! The listeners: `listen:`, `admin:`, `limits:` and the two listener
//! timeouts, `timeouts.client_header` and `timeouts.keepalive`.

use super::errors::Errors;
use crate::defaults::{
    DEFAULT_ADMIN_LISTEN, DEFAULT_ADMIN_MAX_CONNECTIONS, DEFAULT_BACKLOG,
    DEFAULT_CLIENT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER, MAX_BACKLOG, MIN_MAX_HEADER,
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
    let max_connections = admin
        .max_connections
        .unwrap_or(DEFAULT_ADMIN_MAX_CONNECTIONS);
    if max_connections == 0 {
        errs.push("admin.max_connections", "must be at least 1".into());
    }
    Some(Admin {
        listen: listen?,
        token,
        max_connections,
    })
}

pub(super) fn build_limits(limits: FileLimits, errs: &mut Errors) -> Limits {
    let limits = Limits {
        max_body: limits.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
        max_header: limits.max_header.map_or(DEFAULT_MAX_HEADER, |s| s.0),
        max_connections: limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        backlog: limits.backlog.unwrap_or(DEFAULT_BACKLOG),
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
    if !(1..=MAX_BACKLOG).contains(&limits.backlog) {
        errs.push(
            "limits.backlog",
            format!("must be between 1 and {MAX_BACKLOG}"),
        );
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

/// The top-level `timeouts.keepalive` (pools may not set it).
pub(super) fn keepalive(timeouts: &FileTimeouts, errs: &mut Errors) -> Duration {
    let keepalive = timeouts
        .keepalive
        .map_or(DEFAULT_KEEPALIVE_TIMEOUT, |d| d.0);
    if keepalive.is_zero() {
        errs.push("timeouts.keepalive", "must be greater than 0".into());
    }
    keepalive
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
