//! TLS on both sides, with rustls (ring provider):
//!
//! * the proxy listener terminates TLS when `tls: { cert, key }` is set,
//!   offering HTTP/2 and HTTP/1.1 by ALPN;
//! * `https://` instances are reached over TLS verified against the
//!   system's roots plus the pool's optional `tls.ca` file, speaking
//!   HTTP/1.1 (the instance pools are HTTP/1.1 keep-alive).
//!
//! The connection itself is opened by `upstream::dial`.

use fulcrum_config::{Config, Endpoint, ListenerTls, UpstreamTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::{Arc, OnceLock};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no `BEGIN CERTIFICATE` block found",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM) ({e})",
            path.display()
        )
    })
}

/// The listener's TLS settings: certificate chain and key from PEM files,
/// ALPN `h2` then `http/1.1`.
pub fn server_config(t: &ListenerTls) -> Result<Arc<ServerConfig>, String> {
    let certs = read_certs(&t.cert)?;
    let key = read_key(&t.key)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate and key: {e}",
                t.cert.display(),
                t.key.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "while loading the system's CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system CA certificates loaded");
        roots
    })
}

/// Client settings for `https://` instances: the system's roots plus the
/// certificates of every file in `extra_ca`, ALPN `http/1.1`.
pub fn client_config(extra_ca: &[&Path]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = system_roots().clone();
    for path in extra_ca {
        for c in read_certs(path)? {
            roots
                .add(c)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
        }
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// How one `https://` instance is reached: client settings and the name
/// its certificate must carry.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl Upstream {
    /// Settings for `endpoint` as a member of pools with these TLS
    /// settings (their CA files add up; the first `server_name` wins).
    /// `config` is [`client_config`] of the pools' CA files.
    pub fn new(
        endpoint: &Endpoint,
        pools: &[&UpstreamTls],
        config: Arc<ClientConfig>,
    ) -> Result<Self, String> {
        let name = pools
            .iter()
            .find_map(|t| t.server_name.clone())
            .unwrap_or_else(|| host_of(endpoint).to_string());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| format!("`{name}` is not a DNS name or IP address"))?;
        Ok(Self {
            config,
            server_name,
        })
    }
}

/// The host part of an endpoint's authority, without brackets or port.
fn host_of(endpoint: &Endpoint) -> &str {
    let a = endpoint.authority.as_str();
    let host = a.rsplit_once(':').map_or(a, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Every TLS file of `cfg` loaded and checked, as (YAML path, error) pairs:
/// for `fulcrum check`, start-up and reloads.
pub fn check(cfg: &Config) -> Vec<(String, String)> {
    let mut errs = vec![];
    if let Some(t) = &cfg.tls {
        // Each file under its own key first, then whether they make a pair.
        let cert = read_certs(&t.cert).map_err(|e| errs.push(("tls.cert".to_string(), e)));
        let key = read_key(&t.key).map_err(|e| errs.push(("tls.key".to_string(), e)));
        if cert.is_ok() && key.is_ok() {
            if let Err(e) = server_config(t) {
                errs.push(("tls".to_string(), e));
            }
        }
    }
    for (name, pool) in &cfg.pools {
        if let Some(ca) = &pool.tls.ca {
            if let Err(e) = client_config(&[ca.as_path()]) {
                errs.push((format!("pools.{name}.tls.ca"), e));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_taken_from_the_authority() {
        for (url, host) in [
            ("https://asr.internal", "asr.internal"),
            ("https://10.0.0.5:8443/x", "10.0.0.5"),
            ("https://[::1]:9000", "::1"),
        ] {
            let ep = fulcrum_config::parse_endpoint(url).unwrap();
            assert_eq!(host_of(&ep), host, "{url}");
        }
    }

    #[test]
    fn missing_and_malformed_files_are_named() {
        let dir = std::env::temp_dir().join(format!("fulcrum-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let e = client_config(&[junk.as_path()]).unwrap_err();
        assert!(
            e.contains("junk.pem") && e.contains("BEGIN CERTIFICATE"),
            "{e}"
        );
        let e = server_config(&ListenerTls {
            cert: dir.join("none.pem"),
            key: junk.clone(),
        })
        .unwrap_err();
        assert!(e.contains("cannot read") && e.contains("none.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_unusable_listener_file_is_named_by_its_key() {
        let dir = std::env::temp_dir().join(format!("fulcrum-tls-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let mut cfg = fulcrum_config::embedded_default();
        cfg.tls = Some(ListenerTls {
            cert: dir.join("none.pem"),
            key: junk.clone(),
        });
        let errs = check(&cfg);
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["tls.cert", "tls.key"], "{errs:?}");
        assert!(errs[0].1.contains("none.pem"), "{errs:?}");
        assert!(errs[1].1.contains("junk.pem"), "{errs:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
