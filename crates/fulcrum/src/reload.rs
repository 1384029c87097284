//! Reloading the config file: `SIGHUP`, `POST /api/v1/config/reload` and
//! `fulcrum reload` all come here ([`Reloader`]).
//!
//! A valid file is swapped in atomically through the publisher (in-flight
//! requests and open WebSockets finish on the snapshot they started with);
//! an invalid one is refused whole with every error `fulcrum check` would
//! print, and the running config stays. Either way the reload is counted
//! (`fulcrum_config_reloads_total{result}`), logged with what changed, and
//! put in the event log.
//!
//! What needs a restart is compared with the config the listeners were
//! **started** with, not with the last reload: a change reverted in the
//! file is no longer reported.

use fulcrum_config::Config;
use fulcrum_control::config_view;
use fulcrum_control::metrics::Reloads;
use fulcrum_control::publish::{ConfigFile, Publisher};
use fulcrum_control::registry::Registry;
use fulcrum_control::reload::{Reload, ReloadRefused, ReloadReport};
use fulcrum_dataplane::runtime::events::EventKind;
use fulcrum_dataplane::server::ListenerOptions;
use fulcrum_dataplane::Gateway;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a reload touches.
#[derive(Debug)]
pub struct Reloader {
    /// The file to read again; `None` when the gateway started on its
    /// embedded default (or a test's config).
    pub(crate) path: Option<PathBuf>,
    /// The config the listeners were started with.
    pub(crate) started: Config,
    pub(crate) own_addrs: Vec<SocketAddr>,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) file: Arc<ConfigFile>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) registry: Option<Arc<Registry>>,
    pub(crate) reloads: Arc<Reloads>,
}

impl Reloader {
    /// Applies `config` when its TLS files are usable: the changes and
    /// the settings that need a restart.
    fn swap(&self, mut config: Config) -> Result<ReloadReport, ReloadRefused> {
        let mut restart: Vec<String> = ListenerOptions::fixed_changes(&self.started, &config)
            .into_iter()
            .map(String::from)
            .collect();
        if config.access_log != self.started.access_log {
            restart.push("access_log".into());
        }
        if config.log != self.started.log {
            restart.push("log".into());
        }
        if config.metrics != self.started.metrics {
            restart.push("metrics".into());
        }
        if config.registry.enabled != self.started.registry.enabled
            || config.registry.path != self.started.registry.path
        {
            restart.push("registry.enabled / registry.path".into());
        }
        if config.registry.redis != self.started.registry.redis {
            restart.push("registry.store / registry.redis_url / registry.redis_prefix".into());
        }
        // What needs a restart is published as it runs; the listeners stay
        // those bound at start-up.
        ListenerOptions::keep_fixed(&self.started, &mut config);
        config.access_log = self.started.access_log.clone();
        config.log = self.started.log;
        config.metrics = self.started.metrics;
        config.registry.enabled = self.started.registry.enabled;
        config.registry.path = self.started.registry.path.clone();
        config.registry.redis = self.started.registry.redis.clone();
        config.own_addrs = self.own_addrs.clone();
        let listener_tls = crate::tls::tls_settings(&config).map_err(|e| {
            let errors = format!("{e:#}")
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            ReloadRefused::invalid("unusable TLS files", errors)
        })?;
        if self.gateway.listener_tls().is_some() {
            // A listener started without TLS cannot take it on (a restart can).
            if let Some(t) = listener_tls {
                self.gateway.set_listener_tls(Some(t));
            }
        }
        let before = self.gateway.snapshot().config.clone();
        let changes = config_view::diff(&before, &config);
        self.file.set(config);
        if let Some(r) = &self.registry {
            r.prune();
        }
        self.publisher.publish();
        Ok(ReloadReport::new(changes, restart))
    }

    /// Applies a config already read (or the error reading it), counting,
    /// logging and recording the outcome.
    pub fn apply(
        &self,
        loaded: Result<Config, ReloadRefused>,
    ) -> Result<ReloadReport, ReloadRefused> {
        let res = loaded.and_then(|c| self.swap(c));
        self.reloads.count(res.is_ok());
        let (kind, message) = match &res {
            Ok(r) => {
                tracing::info!(changes = %r.summary, "configuration reloaded");
                if !r.restart_needed.is_empty() {
                    tracing::warn!(
                        "changed settings that need a restart were not applied: {}",
                        r.restart_needed.join(", ")
                    );
                }
                (
                    EventKind::Reloaded,
                    format!("configuration reloaded: {}", r.summary),
                )
            }
            Err(e) => {
                tracing::error!(
                    errors = %e.errors.join("; "),
                    "reload rejected, keeping the running config: {}",
                    e.error
                );
                (
                    EventKind::ReloadFailed,
                    format!(
                        "reload refused, the running config stays: {}: {}",
                        e.error,
                        e.errors.join("; ")
                    ),
                )
            }
        };
        let gw = &self.gateway;
        gw.events
            .push(gw.clock.unix_ms(), kind, None, None, &message);
        res
    }

    /// Reads the file as `fulcrum check` does.
    fn read(&self) -> Result<Config, ReloadRefused> {
        let Some(path) = &self.path else {
            return Err(ReloadRefused {
                no_file: true,
                ..ReloadRefused::invalid(
                    "this gateway started without a config file (-c FILE); there is nothing to read again",
                    vec![],
                )
            });
        };
        fulcrum_config::load_file(path).map_err(|errs| {
            ReloadRefused::invalid(
                format!("{} is invalid", path.display()),
                errs.0.iter().map(|e| e.to_string()).collect(),
            )
        })
    }
}

impl Reload for Reloader {
    fn reload(&self) -> Result<ReloadReport, ReloadRefused> {
        self.apply(self.read())
    }
}
