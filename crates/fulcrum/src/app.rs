//! Starting and stopping a whole gateway in-process.

use anyhow::Context;
use fulcrum_config::Config;
use fulcrum_control::admin::{self, AdminState};
use fulcrum_control::dashboard::Dashboard;
use fulcrum_control::health::HealthChecker;
use fulcrum_control::metrics::{self, Metrics, Reloads};
use fulcrum_control::persist::{Embedded, Persist};
use fulcrum_control::publish::{ConfigFile, Overrides, Publisher};
use fulcrum_control::registry::Registry;
use fulcrum_control::reload::{Reload, ReloadRefused, ReloadReport};
use fulcrum_dataplane::http::body::Deadline;
use fulcrum_dataplane::observe::{self, AccessLog, Observer};
use fulcrum_dataplane::server::{self, ListenerOptions};
use fulcrum_dataplane::Gateway;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::reload::Reloader;
pub use crate::tls::tls_settings;

/// A running gateway.
pub struct Running {
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The service registry, when `registry.enabled`.
    pub registry: Option<Arc<Registry>>,
    /// Config reloads, for `/metrics`.
    pub reloads: Arc<Reloads>,
    /// The access log, unless `access_log.path: off` (its `dropped()` is
    /// `fulcrum_access_log_dropped_total`).
    pub access_log: Option<Arc<AccessLog>>,
    /// Reads the config file again and swaps it in (`SIGHUP`,
    /// `POST /api/v1/config/reload`).
    reloader: Arc<Reloader>,
    /// Stops the proxy listener (the drain starts).
    stop: watch::Sender<bool>,
    /// Stops the admin listener, which answers `/readyz` 503 through the
    /// drain so an outer balancer stops sending.
    stop_admin: watch::Sender<bool>,
    /// `/readyz`: ready, then draining.
    ready: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    proxy: JoinHandle<()>,
    admin: JoinHandle<()>,
    expiry: Option<JoinHandle<()>>,
    /// The dashboard's history sampler.
    sampler: JoinHandle<()>,
    /// The dynamic-weights task (`dynamic_weights:`).
    dynamic_weights: JoinHandle<()>,
    /// The learned-limits task (`max_concurrent: auto`).
    concurrency_limits: JoinHandle<()>,
    /// The link to Redis (`registry.store: redis`).
    shared: Option<JoinHandle<()>>,
}

async fn bind(addr: SocketAddr, backlog: u32, what: &str) -> anyhow::Result<TcpListener> {
    server::bind(addr, backlog).with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Binds both listeners and starts serving `config` (drained within its
/// `shutdown.grace` at shutdown).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let grace = config.shutdown.grace;
    start_with_grace(config, grace).await
}

/// As [`start`], with the shutdown grace period for in-flight requests.
pub async fn start_with_grace(config: Config, grace: Duration) -> anyhow::Result<Running> {
    start_with(config, grace, None).await
}

/// As [`start_with_grace`], knowing the file `config` was read from, which
/// a reload reads again.
pub async fn start_with(
    mut config: Config,
    grace: Duration,
    path: Option<std::path::PathBuf>,
) -> anyhow::Result<Running> {
    let listener_tls = tls_settings(&config)?;
    let backlog = config.limits.backlog;
    let proxy_l = bind(config.listen, backlog, "listen").await?;
    let admin_l = bind(config.admin.listen, backlog, "admin.listen").await?;
    let proxy_addr = proxy_l.local_addr()?;
    let admin_addr = admin_l.local_addr()?;
    // No instance may be one of these (registration, and every connect).
    config.own_addrs = vec![proxy_addr, admin_addr];
    if config.registry.enabled && config.registry.token.is_none() && !admin_addr.ip().is_loopback()
    {
        tracing::warn!(%admin_addr, "the service registry (on admin.listen) is reachable beyond loopback and registry.token is not set: anyone who can reach it can register instances; set registry.token and registry.allowed_hosts (docs/SECURITY.md)");
    }
    let opts = ListenerOptions {
        grace,
        ..ListenerOptions::from_config(&config)
    };
    let admin_opts = ListenerOptions {
        grace,
        ..ListenerOptions::admin(&config)
    };
    // Start-up, one way: the data plane on the file's config, the health
    // probers, then the publisher and its sources (file, registry,
    // overrides), and one publication of them all.
    let gateway = Gateway::new(config.clone());
    gateway.set_listener_tls(listener_tls);
    // Each finished request goes to every observer: the debug log line,
    // the metrics' counting unless `metrics.enabled: false`, and the access
    // log unless `access_log.path: off` (with both off the gateway keeps its
    // default, the log line alone).
    let access_log = AccessLog::start(&config.access_log, gateway.clock).with_context(|| {
        format!(
            "cannot open the access log ({:?})",
            config.access_log.target
        )
    })?;
    let mut observers: Vec<Arc<dyn Observer>> = Vec::new();
    let counting = config.metrics.enabled.then(|| {
        let c = Arc::new(observe::Counting::default());
        observers.push(c.clone());
        c
    });
    if let Some(a) = &access_log {
        observers.push(a.clone());
    }
    if !observers.is_empty() {
        observers.insert(0, Arc::new(observe::LogObserver));
        gateway.set_observer(Arc::new(observe::Fanout(observers)));
    }
    let health = HealthChecker::start(&gateway);
    let admin_token = config.admin.token.clone();
    let publisher = Publisher::new(gateway.clone(), health);
    let file = Arc::new(ConfigFile::new(config.clone()));
    publisher.add_source(file.clone());
    let store: Option<Arc<fulcrum_store::Store>> = if config.registry.enabled {
        Some(Arc::new(
            fulcrum_store::Store::open(&config.registry.path).with_context(|| {
                format!(
                    "cannot open the registry store in {}",
                    config.registry.path.display()
                )
            })?,
        ))
    } else {
        None
    };
    let table = |s: &Arc<fulcrum_store::Store>, table| -> Arc<dyn Persist> {
        Arc::new(Embedded {
            store: s.clone(),
            table,
        })
    };
    // Operator overrides (drain, weight), kept from before a restart when
    // there is a store.
    let overrides = Arc::new(
        Overrides::open(
            store
                .as_ref()
                .map(|s| table(s, fulcrum_store::Table::Overrides)),
        )
        .map_err(|e| anyhow::anyhow!(e))?,
    );
    publisher.add_source(overrides.clone());
    let registry = match &store {
        Some(s) => Some(
            Registry::open(
                file.clone(),
                gateway.clone(),
                &publisher,
                table(s, fulcrum_store::Table::Registrations),
            )
            .map_err(|e| anyhow::anyhow!("cannot load the registry: {e}"))?,
        ),
        None => None,
    };
    publisher.publish();
    // `registry.store: redis`: this replica shares its registry, overrides
    // and call counts with the others; it serves on without Redis.
    let shared = match (&config.registry.redis, &registry) {
        (Some(redis), Some(reg)) => Some(fulcrum_control::shared::start(
            redis,
            replica_name(admin_addr),
            reg.clone(),
            overrides.clone(),
            gateway.clone(),
            publisher.clone(),
        )),
        _ => None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let (stop_admin, stop_admin_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let reloads = Arc::new(Reloads::default());
    let metrics = counting.map(|c| {
        Arc::new(Metrics::new(metrics::Sources {
            gateway: gateway.clone(),
            registry: registry.clone(),
            unrouted: c.unrouted.clone(),
            reloads: reloads.clone(),
            access_log: access_log.clone(),
            redis: shared.as_ref().map(|(s, _)| s.status.clone()),
        }))
    });
    let reloader = Arc::new(Reloader {
        path,
        started: config.clone(),
        own_addrs: config.own_addrs.clone(),
        gateway: gateway.clone(),
        file: file.clone(),
        publisher: publisher.clone(),
        registry: registry.clone(),
        reloads: reloads.clone(),
    });
    let (dashboard, sampler) = Dashboard::start(gateway.clone());
    let dynamic_weights =
        fulcrum_control::dynamic_weights::start(gateway.clone(), publisher.clone());
    let concurrency_limits = fulcrum_control::concurrency_limits::start(gateway.clone());
    let router = admin::router(AdminState {
        dashboard,
        reload: Some(reloader.clone()),
        gateway: gateway.clone(),
        ready: ready.clone(),
        draining: draining.clone(),
        registry: registry.clone(),
        token: admin_token,
        overrides,
        publisher: publisher.clone(),
        metrics,
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
    // The admin listener has the proxy's head and keep-alive timeouts, its
    // own connection cap (which also bounds the descriptors it can take
    // from the proxy), and a request body is due within `client_header`
    // of its head.
    let body_due = admin_opts.client_header;
    let router = router.layer(axum::middleware::map_request(
        move |req: axum::extract::Request| async move {
            req.map(|b| axum::body::Body::new(Deadline::new(b, body_due)))
        },
    ));
    let admin = tokio::spawn(server::serve_service(
        admin_l,
        TowerToHyperService::new(router),
        "admin",
        admin_opts,
        stopped(stop_admin_rx),
    ));
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
        reloads,
        access_log,
        reloader,
        stop,
        stop_admin,
        ready,
        draining,
        proxy,
        admin,
        expiry,
        sampler,
        dynamic_weights,
        concurrency_limits,
        shared: shared.map(|(_, task)| task),
    })
}

/// This replica's name in Redis change notices: unique per process even
/// when replicas share an address and a pid (containers: `0.0.0.0:9090`,
/// pid 1), so one never takes another's notice for its own.
fn replica_name(admin_addr: SocketAddr) -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process.
    let salt = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{admin_addr}/{}/{salt:016x}", std::process::id())
}

impl Running {
    /// Swaps in a new configuration atomically; in-flight requests finish
    /// on the snapshot they started with. Answers what changed and the
    /// settings that need a restart to take effect. A config whose TLS
    /// files cannot be used is refused whole, and the running one stays.
    pub fn reload(&self, config: Config) -> anyhow::Result<ReloadReport> {
        self.reloader
            .apply(Ok(config))
            .map_err(|e| anyhow::anyhow!("{}: {}", e.error, e.errors.join("; ")))
    }

    /// Reads the config file again and applies it when it is valid
    /// (`SIGHUP`); refused with every error otherwise. Counted either way
    /// (`fulcrum_config_reloads_total{result}`).
    pub fn reload_file(&self) -> Result<ReloadReport, ReloadRefused> {
        self.reloader.reload()
    }

    /// Opens the access log's file again at its path (`SIGUSR1`, after
    /// logrotate moved it).
    pub fn reopen_access_log(&self) {
        if let Some(a) = &self.access_log {
            a.reopen();
        }
    }

    /// Stops accepting, lets in-flight requests finish within the grace
    /// period, and returns when both listeners are closed.
    pub async fn shutdown(mut self) {
        // /readyz says 503 at once; the admin listener serves on until
        // the proxy has drained.
        self.draining.store(true, Ordering::Relaxed);
        self.ready.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        self.sampler.abort();
        self.dynamic_weights.abort();
        self.concurrency_limits.abort();
        if let Some(s) = self.shared.take() {
            // It holds the registry too (see the expiry task below).
            s.abort();
            let _ = s.await;
        }
        if let Some(e) = self.expiry.take() {
            e.abort();
            // Wait until the task is gone: it holds the registry, and with
            // it the store's file lock, which a restart must be able to take.
            let _ = e.await;
        }
        let _ = self.proxy.await;
        let _ = self.stop_admin.send(true);
        let _ = self.admin.await;
        // The last requests' lines are written before the process exits.
        if let Some(a) = &self.access_log {
            a.flush(Duration::from_secs(2)).await;
        }
    }
}
