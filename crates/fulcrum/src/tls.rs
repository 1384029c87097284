//! The gateway's TLS files, read and checked (a leaf: start-up and
//! reloads both use it).

use fulcrum_config::Config;
use std::sync::Arc;

/// Loads every TLS file of `config`: the listener's settings if it
/// terminates TLS, and an error naming each unusable file otherwise.
pub fn tls_settings(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let errs = fulcrum_dataplane::tls::check(config);
    if !errs.is_empty() {
        let lines: Vec<String> = errs.iter().map(|(p, e)| format!("  {p}: {e}")).collect();
        anyhow::bail!("unusable TLS files:\n{}", lines.join("\n"));
    }
    match &config.tls {
        None => Ok(None),
        Some(t) => Ok(Some(
            fulcrum_dataplane::tls::server_config(t).map_err(|e| anyhow::anyhow!("tls: {e}"))?,
        )),
    }
}
