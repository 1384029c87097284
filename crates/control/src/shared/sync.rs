//! The replica link's two operations on Redis: write this replica's
//! changes ([`flush`]), and read the fleet's whole state back
//! ([`resync`]), re-writing what this replica knows when Redis lacks it
//! ([`republish`]). Each is a handful of pipelined round trips; the caller
//! bounds each with a timeout.
//!
//! What Redis holds is untrusted: an unreadable record or override is
//! logged and skipped, never a panic.

use super::state::{Pending, Shared};
use crate::publish::Override;
use crate::registry::Record;
use redis::aio::MultiplexedConnection;
use redis::RedisResult;
use std::collections::HashMap;

/// Writes `p`, this replica's pending changes: each changed registration
/// as it is now (SET with its TTL, or DEL when gone), each heartbeat
/// (PEXPIRE: a key Redis already expired stays gone), each override
/// (HSET/HDEL); then a notice on the changes channel when anything but
/// heartbeats changed.
pub async fn flush(s: &Shared, c: &mut MultiplexedConnection, p: &Pending) -> RedisResult<()> {
    if p.is_empty() {
        return Ok(());
    }
    let ttl = s.ttl_ms();
    let mut pipe = redis::pipe();
    for ep in &p.registrations {
        let key = s.keys.registration(ep);
        match s.registry.get(ep).map(|r| serde_json::to_vec(&r)) {
            Some(Ok(json)) => pipe.cmd("SET").arg(key).arg(json).arg("PX").arg(ttl),
            _ => pipe.cmd("DEL").arg(key),
        }
        .ignore();
    }
    for ep in p.heartbeats.difference(&p.registrations) {
        pipe.cmd("PEXPIRE")
            .arg(s.keys.registration(ep))
            .arg(ttl)
            .ignore();
    }
    for ep in &p.overrides {
        match s.overrides.get(ep).map(|o| serde_json::to_vec(&o)) {
            Some(Ok(json)) => pipe.cmd("HSET").arg(s.keys.overrides()).arg(ep).arg(json),
            _ => pipe.cmd("HDEL").arg(s.keys.overrides()).arg(ep),
        }
        .ignore();
    }
    if !p.registrations.is_empty() || !p.overrides.is_empty() {
        pipe.cmd("PUBLISH")
            .arg(s.keys.changes())
            .arg(&s.me)
            .ignore();
    }
    pipe.query_async::<()>(c).await
}

/// Writes every registration and override this replica knows that Redis
/// lacks (SET NX, HSETNX: what another replica wrote meanwhile wins), and
/// marks Redis as filled. Run at every (re)connection and whenever the
/// mark is missing: a Redis restarted empty is refilled by the replicas,
/// since services do not register again on their own.
pub async fn republish(s: &Shared, c: &mut MultiplexedConnection) -> RedisResult<()> {
    let ttl = s.ttl_ms();
    let mut pipe = redis::pipe();
    let records = s.registry.list();
    for r in &records {
        if let Ok(json) = serde_json::to_vec(r) {
            pipe.cmd("SET")
                .arg(s.keys.registration(&r.endpoint))
                .arg(json)
                .arg("PX")
                .arg(ttl)
                .arg("NX")
                .ignore();
        }
    }
    let overrides = s.overrides.all();
    for (ep, o) in &overrides {
        if let Ok(json) = serde_json::to_vec(o) {
            pipe.cmd("HSETNX")
                .arg(s.keys.overrides())
                .arg(ep)
                .arg(json)
                .ignore();
        }
    }
    pipe.cmd("SET").arg(s.keys.epoch()).arg(&s.me).ignore();
    pipe.cmd("PUBLISH")
        .arg(s.keys.changes())
        .arg(&s.me)
        .ignore();
    pipe.query_async::<()>(c).await?;
    tracing::info!(
        registrations = records.len(),
        overrides = overrides.len(),
        "wrote what this replica knows to Redis (where Redis lacked it)"
    );
    Ok(())
}

/// Reads the fleet's registrations and overrides and makes them this
/// replica's (publishing when anything changed). Refills Redis first when
/// its mark is missing.
pub async fn resync(s: &Shared, c: &mut MultiplexedConnection) -> RedisResult<()> {
    let filled: bool = redis::cmd("EXISTS")
        .arg(s.keys.epoch())
        .query_async(c)
        .await?;
    if !filled {
        tracing::warn!(
            "Redis holds no fleet state (new, or restarted without its data): refilling it"
        );
        republish(s, c).await?;
    }
    let records = read_registrations(s, c).await?;
    let raw: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(s.keys.overrides())
        .query_async(c)
        .await?;
    let mut overrides = HashMap::new();
    for (ep, bytes) in raw {
        match serde_json::from_slice::<Override>(&bytes) {
            Ok(o) => {
                overrides.insert(ep, o);
            }
            Err(e) => {
                tracing::warn!(endpoint = ?ep, error = %e, "an override in Redis is unreadable: skipped")
            }
        }
    }
    s.registry.apply_shared(records);
    if s.overrides.apply_shared(overrides) {
        s.publisher.publish_soon();
    }
    Ok(())
}

/// Every registration in Redis (SCAN, then MGET by batch).
async fn read_registrations(s: &Shared, c: &mut MultiplexedConnection) -> RedisResult<Vec<Record>> {
    let pattern = s.keys.registrations_pattern();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(c)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(chunk).query_async(c).await?;
        for (key, v) in chunk.iter().zip(values) {
            // Expired between SCAN and MGET: gone.
            let Some(bytes) = v else { continue };
            if let Some(r) = record(s, key, &bytes) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The record a registration key holds, when it reads and is the one its
/// key names.
fn record(s: &Shared, key: &str, bytes: &[u8]) -> Option<Record> {
    let ep = s.keys.endpoint_of(key)?;
    match serde_json::from_slice::<Record>(bytes) {
        Ok(r) if r.endpoint == ep => Some(r),
        Ok(r) => {
            tracing::warn!(key = ?key, endpoint = ?r.endpoint, "a registration in Redis names another endpoint than its key: skipped");
            None
        }
        Err(e) => {
            tracing::warn!(key = ?key, error = %e, "a registration in Redis is unreadable: skipped");
            None
        }
    }
}
