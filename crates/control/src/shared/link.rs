//! The one task that talks to Redis, per replica: connect, subscribe to
//! the change notices, reconcile, then write local changes as they come,
//! flush the call counts every [`FLUSH`] and read the fleet's state on
//! every notice and every [`RESYNC`]. Every operation has a deadline
//! ([`OP_TIMEOUT`]); any failure ends the session, counts an outage and
//! starts the next after a backoff (100 ms doubling to [`MAX_BACKOFF`]).
//! Nothing here is on the request path, and nothing the API does waits
//! for it.

use super::counters::Counted;
use super::keys::Keys;
use super::state::{Shared, Status};
use super::sync::{flush, republish, resync};
use crate::mirror::Mirror;
use crate::publish::{Overrides, Publisher};
use crate::registry::Registry;
use fulcrum_config::RedisStore;
use fulcrum_dataplane::Gateway;
use futures_util::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the call counts are added to the fleet's.
pub const FLUSH: Duration = Duration::from_millis(50);
/// How often the whole shared state is read, notices or not.
pub const RESYNC: Duration = Duration::from_secs(2);
/// Deadline of one connection attempt or one round of commands.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Links this replica's registry and overrides to Redis and starts the
/// task; `me` names the replica in change notices.
pub fn start(
    redis: &RedisStore,
    me: String,
    registry: Arc<Registry>,
    overrides: Arc<Overrides>,
    gateway: Arc<Gateway>,
    publisher: Arc<Publisher>,
) -> (Arc<Shared>, JoinHandle<()>) {
    let shared = Arc::new(Shared {
        url: redis.url.clone(),
        keys: Keys::new(&redis.prefix),
        me,
        registry: registry.clone(),
        overrides: overrides.clone(),
        gateway,
        publisher,
        status: Arc::new(Status::default()),
        pending: Default::default(),
        wake: Default::default(),
    });
    registry.set_mirror(shared.clone() as Arc<dyn Mirror>);
    overrides.set_mirror(shared.clone() as Arc<dyn Mirror>);
    // Until Redis answers, this replica holds what it has.
    registry.hold_expiry(true);
    let task = tokio::spawn(run(shared.clone()));
    (shared, task)
}

/// Bounds `f` by [`OP_TIMEOUT`].
async fn timed<T>(f: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
    }
}

async fn run(s: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let started = tokio::time::Instant::now();
        let e = session(&s).await;
        s.registry.hold_expiry(true);
        if s.status.set_down() {
            tracing::error!(error = %e, "lost Redis: serving from what this replica knows, taking registrations locally, reconnecting");
        } else if first {
            tracing::error!(error = %e, url = %s.url, "cannot reach Redis: serving from what this replica knows, retrying");
        } else {
            tracing::debug!(error = %e, "Redis still unreachable");
        }
        first = false;
        if started.elapsed() > 2 * RESYNC {
            backoff = Duration::from_millis(100);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life; returns why it ended.
async fn session(s: &Shared) -> String {
    match connected(s).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn connected(s: &Shared) -> Result<std::convert::Infallible, String> {
    let client = redis::Client::open(s.url.as_str()).map_err(|e| e.to_string())?;
    let mut c = timed(client.get_multiplexed_async_connection()).await?;
    let mut ps = timed(client.get_async_pubsub()).await?;
    timed(ps.subscribe(s.keys.changes())).await?;
    let mut notices = ps.into_on_message();
    // Reconcile: what changed here meanwhile, then what Redis lacks.
    let p = s.take_pending();
    if let Err(e) = timed(flush(s, &mut c, &p)).await {
        s.pending().merge(p);
        return Err(e);
    }
    timed(republish(s, &mut c)).await?;
    timed(resync(s, &mut c)).await?;
    s.registry.hold_expiry(false);
    s.status.set_up();
    tracing::info!(url = %s.url, "connected to Redis: sharing the registry with the other replicas");
    let mut counted = Counted::default();
    let mut counts = tokio::time::interval(FLUSH);
    let mut full = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            n = notices.next() => {
                let Some(msg) = n else {
                    return Err("the change notices' connection closed".into());
                };
                if msg.get_payload_bytes() != s.me.as_bytes() {
                    timed(resync(s, &mut c)).await?;
                }
            }
            _ = s.wake.notified() => write(s, &mut c).await?,
            _ = counts.tick() => {
                write(s, &mut c).await?;
                timed(counted.flush(s, &mut c)).await?;
            }
            _ = full.tick() => timed(resync(s, &mut c)).await?,
        }
    }
}

/// Writes the pending changes; on failure they stay pending.
async fn write(s: &Shared, c: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    let p = s.take_pending();
    let r = timed(flush(s, c, &p)).await;
    if r.is_err() {
        s.pending().merge(p);
    }
    r
}
