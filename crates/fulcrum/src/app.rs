//! Starting and stopping a whole gateway in-process.

use anyhow::Context;
use fulcrum_config::Config;
use fulcrum_control::admin::{self, AdminState};
use fulcrum_control::health::HealthChecker;
use fulcrum_control::registry::{Embedded, Registry};
use fulcrum_dataplane::server::{self, ListenerOptions};
use fulcrum_dataplane::Gateway;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running gateway.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The service registry, when `registry.enabled`.
    pub registry: Option<Arc<Registry>>,
    health: Arc<HealthChecker>,
    stop: watch::Sender<bool>,
    proxy: JoinHandle<()>,
    admin: JoinHandle<()>,
    expiry: Option<JoinHandle<()>>,
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

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

/// Binds both listeners and starts serving `config`.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_grace(config, Duration::from_secs(30)).await
}

/// As [`start`], with the shutdown grace period for in-flight requests.
pub async fn start_with_grace(config: Config, grace: Duration) -> anyhow::Result<Running> {
    let listener_tls = tls_settings(&config)?;
    let proxy_l = bind(config.listen, "listen").await?;
    let admin_l = bind(config.admin.listen, "admin.listen").await?;
    let proxy_addr = proxy_l.local_addr()?;
    let admin_addr = admin_l.local_addr()?;
    let opts = ListenerOptions {
        grace,
        ..ListenerOptions::from_config(&config)
    };
    let gateway = Gateway::new(config.clone());
    gateway.set_listener_tls(listener_tls);
    let health = HealthChecker::start(&gateway);
    let admin_token = config.admin.token.clone();
    let (registry, store) = if config.registry.enabled {
        let store = Arc::new(
            fulcrum_store::Store::open(&config.registry.path).with_context(|| {
                format!(
                    "cannot open the registry store in {}",
                    config.registry.path.display()
                )
            })?,
        );
        // Operator overrides (drain, weight) kept from before the restart.
        for (ep, bytes) in store
            .load(fulcrum_store::Table::Overrides)
            .context("cannot read stored overrides")?
        {
            match serde_json::from_slice::<fulcrum_dataplane::Override>(&bytes) {
                Ok(o) => gateway.set_override(&ep, o),
                Err(e) => anyhow::bail!("stored override for {ep} is unreadable ({e}); remove it with the admin API or move the store aside"),
            }
        }
        let reg = Registry::open(
            config,
            gateway.clone(),
            health.clone(),
            Arc::new(Embedded(store.clone())),
        )
        .map_err(|e| anyhow::anyhow!("cannot load the registry: {e}"))?;
        (Some(reg), Some(store))
    } else {
        (None, None)
    };
    let (stop, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let router = admin::router(AdminState {
        gateway: gateway.clone(),
        ready: ready.clone(),
        registry: registry.clone(),
        token: admin_token,
        store,
    });
    let expiry = registry.clone().map(|reg| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                reg.expire();
            }
        })
    });
    let admin = tokio::spawn({
        let rx = stop_rx.clone();
        async move {
            if let Err(e) = axum::serve(admin_l, router)
                .with_graceful_shutdown(stopped(rx))
                .await
            {
                tracing::error!(error = %e, "admin listener failed");
            }
        }
    });
    let proxy = tokio::spawn(server::serve(
        proxy_l,
        gateway.clone(),
        opts,
        stopped(stop_rx),
    ));
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%proxy_addr, %admin_addr, "fulcrum is serving");
    Ok(Running {
        proxy_addr,
        admin_addr,
        gateway,
        registry,
        health,
        stop,
        proxy,
        admin,
        expiry,
    })
}

impl Running {
    /// Swaps in a new configuration atomically; in-flight requests finish
    /// on the snapshot they started with. Returns the listener settings
    /// that changed in the file but need a restart to take effect.
    ///
    /// A config whose TLS files cannot be used is refused whole, and the
    /// running one stays.
    pub fn reload(&self, config: Config) -> anyhow::Result<Vec<&'static str>> {
        let fixed = ListenerOptions::fixed_changes(&self.gateway.snapshot().config, &config);
        let listener_tls = tls_settings(&config)?;
        if self.gateway.listener_tls().is_some() {
            // A listener started without TLS cannot take it on (a restart can).
            if let Some(t) = listener_tls {
                self.gateway.set_listener_tls(Some(t));
            }
        }
        match &self.registry {
            // The registry merges its registrations into the new file's pools.
            Some(reg) => reg.set_base(config),
            None => {
                self.gateway.apply(config);
                self.health.sync(&self.gateway);
            }
        }
        Ok(fixed)
    }

    /// Stops accepting, lets in-flight requests finish within the grace
    /// period, and returns when both listeners are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(e) = self.expiry.take() {
            e.abort();
            // Wait until the task is gone: it holds the registry, and with
            // it the store's file lock, which a restart must be able to take.
            let _ = e.await;
        }
        let _ = self.proxy.await;
        let _ = self.admin.await;
    }
}
