//! Leaf HTTP pieces every other module may use: [`body`] types (the one
//! boxed body, the tracked body with its completion handle, the bounded
//! read-ahead), response [`compress`]ion (gzip, zstd), forwarding
//! [`headers`], request [`path`] normalisation, the caller ([`peer`]) and
//! the gateway's own [`error`] answers.

pub mod body;
pub mod compress;
pub mod error;
pub mod headers;
pub mod path;
pub mod peer;

pub use error::{Blame, ProxyError};
pub use peer::Peer;
