//! The caller of a connection, as the listener saw it.

use crate::http::headers;
use http::HeaderValue;
use std::net::SocketAddr;

/// The caller of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s IP as a header value, for `X-Forwarded-For` and `X-Real-IP`.
    pub ip: HeaderValue,
    /// `http` or `https` (TLS terminated here), for `X-Forwarded-Proto`.
    pub proto: &'static str,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ip: headers::ip_value(addr.ip()),
            proto: "http",
        }
    }

    /// The caller came over TLS.
    pub fn with_tls(mut self) -> Self {
        self.proto = "https";
        self
    }
}
