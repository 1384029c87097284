//! The cache key of a request (method, Host, route, path, query and the
//! SHA-256 of the body).

use http::{Method, Uri};

/// Request bodies up to this size are hashed into the key; larger ones
/// bypass the cache (and stream).
pub const MAX_KEYED_BODY: usize = 1 << 20;

pub type Key = [u8; 32];

/// The cache key of a request: its method, the `Host` it was sent to, the
/// route's prefix length (`skip`: two routes into one pool may forward the
/// same path differently), path, query and the SHA-256 of its body.
pub fn key(method: &Method, host: &[u8], skip: usize, uri: &Uri, body: &[u8]) -> Key {
    use ring::digest::{digest, Context as Sha, SHA256};
    let body_hash = digest(&SHA256, body);
    let mut h = Sha::new(&SHA256);
    let skip = (skip as u64).to_be_bytes();
    for part in [
        method.as_str().as_bytes(),
        host,
        &skip[..],
        uri.path().as_bytes(),
        uri.query().unwrap_or("").as_bytes(),
        body_hash.as_ref(),
    ] {
        // Length-prefixed, so no two different requests hash the same bytes.
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(h.finish().as_ref());
    k
}
