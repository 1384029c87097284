//! The service registry: instances that register themselves over HTTP
//! (the video-analysis platform's API, see [`api`]), a [`Source`] of the
//! publisher's desired state.
//!
//! Every task type a registered instance names is a pool of that name: a
//! `pools:` entry of the same name supplies its policy, otherwise the
//! registry's default pool (global defaults + `registry.default_algorithm`).
//! A `pools:` entry takes registered instances only when it says so
//! (`registration: true`); otherwise a registration naming it is refused
//! whole, so a registration can never join the config file's own pools
//! (and the callers' traffic to them) uninvited.
//! Any change asks the [`Publisher`] to publish, which merges the
//! registrations into the config file's pools and re-aligns the health
//! probers, so a registered instance is probed like a configured one (a
//! service that heartbeats but fails its probe gets no traffic).
//!
//! Every value a caller sent (service_id, name, endpoint, task types, an
//! id from a path) is logged with `?` (Debug): quoted, with control
//! characters escaped, so a newline in a `service_id` cannot forge a log
//! line. The values themselves are stored and listed as sent.
//!
//! Registrations are kept in a [`Persist`] store (the embedded database),
//! written before the change is acknowledged, so they survive a restart and
//! a `kill -9`. Time is the gateway's injected clock, so expiry follows
//! tokio's paused time in tests.

pub mod answers;
pub mod api;
mod error;
mod members;
mod record;
mod replica;

pub use error::RegistryError;
pub use record::{instance_id, HeartbeatStats, Record, RegisterRequest};

use crate::mirror::{FleetCounts, Mirror};
use crate::persist::Persist;
use crate::publish::{ConfigFile, Desired, Publisher, Source};
use fulcrum_config::{parse_endpoint, Config, Instance};
use fulcrum_dataplane::runtime::events::EventKind;
use fulcrum_dataplane::upstream::dial::is_own_listener;
use fulcrum_dataplane::Gateway;
use members::Registrations;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub struct Registry {
    file: Arc<ConfigFile>,
    records: Mutex<Registrations>,
    store: Arc<dyn Persist>,
    pub gateway: Arc<Gateway>,
    /// Weak: the publisher holds this registry as a source.
    publisher: Weak<Publisher>,
    /// Since start, for `/metrics`.
    pub counters: RegistryCounters,
    /// With `store: redis`: the replica link, told of every local change.
    mirror: OnceLock<Arc<dyn Mirror>>,
    /// With `store: redis`: the fleet's request counts (the statistics).
    pub fleet: FleetCounts,
    /// Set while the shared store is unreachable: nothing expires (the
    /// registrations known are the last known state; their heartbeats may
    /// be arriving at other replicas).
    hold: AtomicBool,
}

/// What the registry did since start (`fulcrum_registry_*_total`).
#[derive(Debug, Default)]
pub struct RegistryCounters {
    /// Registrations accepted (a re-registration counts again).
    pub registrations: AtomicU64,
    /// Heartbeats accepted (one per call, however many instances it names).
    pub heartbeats: AtomicU64,
    /// Registrations removed for want of a heartbeat.
    pub expiries: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Loads the stored registrations and joins the publisher's sources
    /// (the caller publishes). A restart counts as a heartbeat: instances get a full
    /// `heartbeat_timeout` to send their next one.
    pub fn open(
        file: Arc<ConfigFile>,
        gateway: Arc<Gateway>,
        publisher: &Arc<Publisher>,
        store: Arc<dyn Persist>,
    ) -> Result<Arc<Self>, RegistryError> {
        let mut records = BTreeMap::new();
        let (now, now_ms) = (gateway.clock.unix_secs(), gateway.clock.now_ms());
        for (key, bytes) in store.load().map_err(RegistryError::Store)? {
            let mut r: Record = serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Store(format!("stored registration `{key}` is unreadable: {e}"))
            })?;
            r.last_heartbeat = now;
            r.seen_ms = now_ms;
            records.insert(key, r);
        }
        let records: Registrations = records.into_values().collect();
        let reg = Arc::new(Self {
            file,
            records: Mutex::new(records),
            store,
            gateway,
            publisher: Arc::downgrade(publisher),
            counters: RegistryCounters::default(),
            mirror: OnceLock::new(),
            fleet: FleetCounts::default(),
            hold: AtomicBool::new(false),
        });
        reg.prune();
        publisher.add_source(reg.clone());
        Ok(reg)
    }

    /// Drops the registrations that the config in force no longer allows
    /// (see [`Registry::register`]'s checks), from memory and from the
    /// store, logging each: at start-up and after a reload, a
    /// registration made under an older config is removed rather than
    /// routed. Returns the endpoints dropped; the caller publishes.
    pub fn prune(&self) -> Vec<String> {
        let cfg = self.config();
        let mut recs = self.records();
        let dropped: Vec<(String, RegistryError)> = recs
            .values()
            .filter_map(|r| refusal(r, &cfg).map(|why| (r.endpoint.clone(), why)))
            .collect();
        for (ep, why) in &dropped {
            if let Err(e) = self.store.delete(ep) {
                tracing::error!(endpoint = ?ep, error = ?e, "could not delete a dropped registration from the store");
            }
            recs.remove(ep);
            tracing::warn!(endpoint = ?ep, reason = ?why.to_string(), "registration dropped: the config in force does not allow it");
        }
        dropped.into_iter().map(|(ep, _)| ep).collect()
    }

    /// Seconds since the Unix epoch, on the gateway's clock.
    pub fn unix_now(&self) -> u64 {
        self.gateway.clock.unix_secs()
    }

    /// The config file's settings in force (tokens, `allowed_hosts`, timeouts).
    pub fn config(&self) -> Config {
        self.file.get()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Registrations> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces (same endpoint) a registration, when the config in
    /// force allows it: its endpoint in `registry.allowed_hosts` (when
    /// set), and none of its task types naming a pool of the file closed to
    /// registration (403 otherwise).
    pub fn register(&self, req: RegisterRequest) -> Result<Record, RegistryError> {
        let cfg = self.config();
        let mut record = req.into_record(self.unix_now())?;
        if let Some(refused) = refusal(&record, &cfg) {
            return Err(refused);
        }
        record.seen_ms = self.gateway.clock.now_ms();
        let bytes = serde_json::to_vec(&record).map_err(|e| RegistryError::Store(e.to_string()))?;
        {
            let mut recs = self.records();
            let max = cfg.registry.max_instances;
            if recs.len() >= max && !recs.contains_key(&record.endpoint) {
                return Err(RegistryError::Full(format!(
                    "the registry holds {} instances, its limit (registry.max_instances); \
                     one must leave before another registers",
                    recs.len()
                )));
            }
            self.store
                .put(&record.endpoint, &bytes)
                .map_err(RegistryError::Store)?;
            recs.insert(record.clone());
            self.mirrored(|m| m.registration_changed(&record.endpoint));
        }
        self.counters.registrations.fetch_add(1, Relaxed);
        tracing::info!(service_id = ?record.service_id, name = ?record.name, endpoint = ?record.endpoint, task_types = ?record.task_types, "instance registered");
        self.event(
            EventKind::Registered,
            &record.endpoint,
            &format!(
                "registered by service {:?} ({:?}, version {:?}) for {}",
                record.service_id,
                record.name,
                record.version,
                record.task_types.join(", ")
            ),
        );
        self.publish();
        Ok(record)
    }

    /// Endpoints matching an instance_id, an endpoint (percent-decoded) or a service_id.
    fn matching(recs: &Registrations, id: &str) -> Vec<String> {
        // `id` arrives already percent-decoded (axum's `Path`).
        let by_key: Vec<String> = recs
            .values()
            .filter(|r| {
                instance_id(&r.endpoint) == id
                    || r.endpoint == id
                    || r.endpoint.trim_end_matches('/') == id.trim_end_matches('/')
            })
            .map(|r| r.endpoint.clone())
            .collect();
        if !by_key.is_empty() {
            return by_key;
        }
        recs.values()
            .filter(|r| r.service_id == id)
            .map(|r| r.endpoint.clone())
            .collect()
    }

    /// Records a heartbeat; returns how many instances it refreshed.
    pub fn heartbeat(
        &self,
        id: &str,
        stats: Option<HeartbeatStats>,
    ) -> Result<usize, RegistryError> {
        let mut recs = self.records();
        let hits = Self::matching(&recs, id);
        if hits.is_empty() {
            return Err(RegistryError::NotFound(id.to_string()));
        }
        let (now, now_ms) = (self.unix_now(), self.gateway.clock.now_ms());
        self.counters.heartbeats.fetch_add(1, Relaxed);
        for ep in &hits {
            self.mirrored(|m| m.heartbeat(ep));
            if let Some(r) = recs.get_mut(ep) {
                r.last_heartbeat = now;
                r.seen_ms = now_ms;
                r.warned = false;
                // Stats describe one process: a heartbeat naming a whole
                // service_id refreshes all its instances but cannot say
                // whose stats these are, so they are kept only when it
                // names exactly one. Only stats are worth a disk write:
                // liveness restarts at load anyway.
                if stats.is_some() && hits.len() == 1 {
                    r.stats = stats.clone();
                    let bytes =
                        serde_json::to_vec(&*r).map_err(|e| RegistryError::Store(e.to_string()))?;
                    self.store.put(ep, &bytes).map_err(RegistryError::Store)?;
                    self.mirrored(|m| m.registration_changed(ep));
                }
            }
        }
        Ok(hits.len())
    }

    /// Removes the matching instances; returns how many.
    pub fn unregister(&self, id: &str) -> Result<usize, RegistryError> {
        let n = {
            let mut recs = self.records();
            let hits = Self::matching(&recs, id);
            if hits.is_empty() {
                return Err(RegistryError::NotFound(id.to_string()));
            }
            for ep in &hits {
                self.store.delete(ep).map_err(RegistryError::Store)?;
                recs.remove(ep);
                self.mirrored(|m| m.registration_changed(ep));
                self.event(EventKind::Unregistered, ep, "unregistered by its service");
            }
            hits.len()
        };
        tracing::info!(id = ?id, removed = n, "instance unregistered");
        self.publish();
        Ok(n)
    }

    /// Removes every registration; returns how many there were.
    pub fn clear(&self) -> Result<usize, RegistryError> {
        let n = {
            let mut recs = self.records();
            self.store.clear().map_err(RegistryError::Store)?;
            let n = recs.len();
            for r in recs.values() {
                self.mirrored(|m| m.registration_changed(&r.endpoint));
                self.event(
                    EventKind::Unregistered,
                    &r.endpoint,
                    "unregistered: the registry was cleared",
                );
            }
            recs.clear();
            n
        };
        self.publish();
        Ok(n)
    }

    /// Records what happened to a registration in the gateway's event log.
    fn event(&self, kind: EventKind, endpoint: &str, message: &str) {
        let gw = &self.gateway;
        gw.events
            .push(gw.clock.unix_ms(), kind, Some(endpoint), None, message);
    }

    /// Registrations held now.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn list(&self) -> Vec<Record> {
        self.records().values().cloned().collect()
    }

    /// Removes registrations whose last heartbeat is older than
    /// `heartbeat_timeout` (on the monotonic clock), warning once at 80 %.
    /// Returns the removed endpoints.
    pub fn expire(&self) -> Vec<String> {
        if self.hold.load(Relaxed) {
            return vec![];
        }
        let timeout = self.config().registry.heartbeat_timeout.as_secs_f64();
        let now_ms = self.gateway.clock.now_ms();
        let mut removed = vec![];
        {
            let mut recs = self.records();
            for r in recs.values_mut() {
                let silent = now_ms.saturating_sub(r.seen_ms) as f64 / 1000.0;
                if silent >= timeout {
                    removed.push(r.endpoint.clone());
                } else if silent >= 0.8 * timeout && !r.warned {
                    r.warned = true;
                    tracing::warn!(endpoint = ?r.endpoint, service_id = ?r.service_id, silent_s = silent, "no heartbeat for 80 % of heartbeat_timeout");
                }
            }
            for ep in &removed {
                if let Err(e) = self.store.delete(ep) {
                    tracing::error!(endpoint = ?ep, error = ?e, "could not delete an expired registration from the store");
                }
                recs.remove(ep);
                tracing::warn!(endpoint = ?ep, "registration expired: no heartbeat within heartbeat_timeout");
                self.event(
                    EventKind::Expired,
                    ep,
                    &format!("expired: no heartbeat for {timeout} s (registry.heartbeat_timeout)"),
                );
            }
        }
        if !removed.is_empty() {
            self.counters
                .expiries
                .fetch_add(removed.len() as u64, Relaxed);
            self.publish();
        }
        removed
    }

    /// Runs `f` on the replica link, if there is one.
    fn mirrored(&self, f: impl FnOnce(&Arc<dyn Mirror>)) {
        if let Some(m) = self.mirror.get() {
            f(m);
        }
    }

    /// Asks the publisher to publish the registry's new state: at once
    /// while publications are cheap, else soon, coalesced with the other
    /// changes of the moment ([`Publisher::publish_soon`]), so one
    /// registration's cost does not grow with the registry.
    fn publish(&self) {
        if let Some(p) = self.publisher.upgrade() {
            p.publish_soon();
        }
    }
}

/// The address an endpoint's host stands for without a lookup: an IP
/// address, or loopback for `localhost` (and `*.localhost`, RFC 6761).
/// Other names are checked when connecting, on what they resolve to.
fn literal_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse() {
        return Some(ip);
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then_some(IpAddr::from([127, 0, 0, 1]))
}

/// Why the config `cfg` does not allow the registration `r`, if it does
/// not: more task types than `registry.max_task_types`, its endpoint one
/// of the gateway's own listeners or not in
/// `registry.allowed_hosts`, or one of its task types names a pool of the
/// file that does not take registrations.
fn refusal(r: &Record, cfg: &Config) -> Option<RegistryError> {
    let max = cfg.registry.max_task_types;
    if r.task_types.len() > max {
        return Some(RegistryError::Invalid(format!(
            "`task_types` has {} entries; at most {max} are allowed (registry.max_task_types)",
            r.task_types.len()
        )));
    }
    let Ok(endpoint) = parse_endpoint(&r.endpoint) else {
        return Some(RegistryError::Invalid(format!(
            "`endpoint` `{}` is not a valid endpoint",
            r.endpoint
        )));
    };
    let (host, port) = endpoint.host_port();
    if let Some(ip) = literal_ip(host) {
        if is_own_listener(&cfg.own_addrs, SocketAddr::new(ip, port)) {
            return Some(RegistryError::Forbidden(format!(
                "`endpoint` {host}:{port} is one of this gateway's own listeners (listen, admin.listen)"
            )));
        }
    }
    let allowed = &cfg.registry.allowed_hosts;
    if !allowed.is_empty() && !allowed.iter().any(|a| a.admits(host, port)) {
        return Some(RegistryError::Forbidden(format!(
            "`endpoint` {host}:{port} is not in registry.allowed_hosts"
        )));
    }
    let closed = r
        .task_types
        .iter()
        .find(|t| cfg.pools.get(*t).is_some_and(|p| !p.registration))?;
    Some(RegistryError::Forbidden(format!(
        "task type `{closed}` is a pool of the config file that takes no registered instances \
         (set `pools.{closed}.registration: true` to allow it); nothing was registered"
    )))
}

impl Source for Registry {
    /// One pool per registered task type, added to the file's pools (a
    /// pool of the file only when it takes registrations). The members
    /// are copied out under the lock as pointers; the pools are built
    /// after it is released, so a registration never waits for a build.
    fn contribute(&self, desired: &mut Desired) {
        let members = self.records().members();
        let cfg = &mut desired.config;
        for (task, insts) in members {
            match cfg.pools.get_mut(&task) {
                // Registered before the pool was closed to registration.
                Some(pool) if !pool.registration => {}
                Some(pool) => {
                    let listed: HashSet<String> = pool
                        .instances
                        .iter()
                        .map(|i| i.endpoint.url.clone())
                        .collect();
                    pool.instances.extend(
                        insts
                            .iter()
                            .filter(|i| !listed.contains(&i.endpoint.url))
                            .map(|i| Instance::clone(i)),
                    );
                }
                None => {
                    let mut pool = cfg.default_pool.clone();
                    pool.name = task.clone();
                    pool.instances = insts.iter().map(|i| Instance::clone(i)).collect();
                    cfg.pools.insert(task, pool);
                }
            }
        }
    }
}
