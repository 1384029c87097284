//! Fleet-wide call counts. Each replica counts its own tries on each
//! instance (the request path's atomics, untouched); every
//! [`super::link::FLUSH`] the link adds what it counted since the last
//! flush to two Redis hashes (HINCRBY, one pipelined round trip) and gets
//! the fleet's totals back from the same commands.
//!
//! The totals then go where the replica reads them:
//! * the member's `calls` (what `least_calls` compares) is raised to this
//!   replica's own count plus the other replicas' count divided by the
//!   number of replicas — never lowered (`fetch_max`), so a Redis that
//!   lost its counts cannot drive it backwards, and nothing is counted
//!   twice. Why divided: every replica sees the same (slightly stale)
//!   imbalance of the others; if each corrected all of it, three replicas
//!   would overshoot threefold and the counts would swing (measured: 2 %
//!   off the even share after 3,000 requests). Each correcting its share
//!   converges; only differences matter to `least_calls`;
//! * [`crate::mirror::FleetCounts`], from which the platform statistics
//!   (`/services`, `/load_balance/*`, `/inference_stats`) read.
//!
//! The same round trip shares the instances kept out: a passive ejection
//! or a `Retry-After` cool-down taken here is written as a Unix-ms
//! deadline (the replicas' monotonic clocks differ), and every replica
//! keeps the instance out until it (`InstanceState::hold_until`), so an
//! instance that told one replica to back off is left alone by all.

use super::state::Shared;
use crate::mirror::Fleet;
use redis::aio::MultiplexedConnection;
use redis::RedisResult;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// What this replica has already added to the fleet's totals, by
/// endpoint: (tries, failures).
#[derive(Debug, Default)]
pub struct Counted {
    sent: HashMap<String, (u64, u64)>,
    /// The hold deadline (Unix ms) last written, by endpoint.
    held: HashMap<String, u64>,
    /// Replicas seen flushing within the last [`REPLICA_FRESH_MS`].
    replicas: u64,
}

/// A replica that has not flushed for this long is not counted.
const REPLICA_FRESH_MS: u64 = 3_000;

impl Counted {
    /// Adds this replica's new counts to the fleet's and takes the totals
    /// back. On an error nothing is marked as added (the next flush sends
    /// it again).
    pub async fn flush(&mut self, s: &Shared, c: &mut MultiplexedConnection) -> RedisResult<()> {
        let snap = s.gateway.snapshot();
        let now = s.gateway.clock.now_ms();
        let mut rows = Vec::with_capacity(snap.instances.len());
        let mut pipe = redis::pipe();
        for (ep, inst) in &snap.instances {
            let st = inst.stats(now);
            let (sent_r, sent_f) = self.sent.get(ep).copied().unwrap_or_default();
            // Counts restart when an instance leaves and comes back.
            let (dr, df) = match st.requests >= sent_r && st.failures >= sent_f {
                true => (st.requests - sent_r, st.failures - sent_f),
                false => (st.requests, st.failures),
            };
            pipe.cmd("HINCRBY").arg(s.keys.calls()).arg(ep).arg(dr);
            pipe.cmd("HINCRBY").arg(s.keys.failures()).arg(ep).arg(df);
            rows.push((ep.clone(), inst.clone(), st.requests, st.failures));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let totals: Vec<i64> = pipe.query_async(c).await?;
        let mut fleet = HashMap::with_capacity(rows.len());
        let mut sent = HashMap::with_capacity(rows.len());
        for ((ep, inst, r, f), t) in rows.into_iter().zip(totals.chunks(2)) {
            let (tr, tf) = match t {
                [a, b] => (
                    u64::try_from(*a).unwrap_or(0),
                    u64::try_from(*b).unwrap_or(0),
                ),
                _ => continue,
            };
            let others = tr.saturating_sub(r) / self.replicas.max(1);
            let own = inst.stats(now).requests;
            inst.calls.fetch_max(own.saturating_add(others), Relaxed);
            fleet.insert(
                ep.clone(),
                Fleet {
                    requests: tr,
                    failures: tf,
                    local_requests: r,
                    local_failures: f,
                },
            );
            sent.insert(ep, (r, f));
        }
        self.sent = sent;
        s.registry.fleet.set(fleet);
        self.share_holds(s, c).await
    }

    /// Writes the deadlines of the instances kept out here (when new),
    /// and keeps out here those another replica keeps out.
    async fn share_holds(&mut self, s: &Shared, c: &mut MultiplexedConnection) -> RedisResult<()> {
        let snap = s.gateway.snapshot();
        let (now, unix) = (s.gateway.clock.now_ms(), s.gateway.clock.unix_ms());
        let mut pipe = redis::pipe();
        for (ep, inst) in &snap.instances {
            let until = inst.ejected_until_ms();
            if until <= now {
                continue;
            }
            let deadline = unix + (until - now);
            // Within 50 ms of what was written: the same hold.
            if self.held.get(ep).is_some_and(|d| d + 50 >= deadline) {
                continue;
            }
            self.held.insert(ep.clone(), deadline);
            pipe.cmd("HSET")
                .arg(s.keys.holds())
                .arg(ep)
                .arg(deadline)
                .ignore();
        }
        pipe.cmd("HSET")
            .arg(s.keys.replicas())
            .arg(&s.me)
            .arg(unix)
            .ignore();
        pipe.cmd("HGETALL").arg(s.keys.holds());
        pipe.cmd("HGETALL").arg(s.keys.replicas());
        let (all, replicas): (HashMap<String, String>, HashMap<String, String>) =
            pipe.query_async(c).await?;
        self.replicas = replicas
            .values()
            .filter_map(|v| v.parse::<u64>().ok())
            .filter(|at| at + REPLICA_FRESH_MS >= unix)
            .count() as u64;
        for (ep, v) in all {
            let Ok(deadline) = v.parse::<u64>() else {
                continue;
            };
            if deadline <= unix || self.held.get(&ep) == Some(&deadline) {
                continue;
            }
            if let Some(inst) = snap.instances.get(&ep) {
                // At most a minute: a deadline from a skewed clock or a
                // bad write must not keep an instance out for long.
                inst.hold_until(now + (deadline - unix).min(60_000));
            }
        }
        Ok(())
    }
}
