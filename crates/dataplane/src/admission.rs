//! Admission: from a pool snapshot to one acquired instance slot.
//!
//! Asks the policy's [`select`] for an instance, takes an in-flight slot on
//! it (a compare-and-swap that can lose a race, in which case we choose
//! again), and when every usable instance is at `max_concurrent`, waits in
//! the pool's bounded queue until a slot frees or the queue timeout passes.

use crate::error::ProxyError;
use crate::instance::InFlightGuard;
use crate::snapshot::PoolRuntime;
use crate::Clock;
use fulcrum_policy::rng::ThreadRng;
use fulcrum_policy::{select, SelectOutcome};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

enum Try {
    Got(usize, InFlightGuard),
    Busy,
    Down,
}

thread_local! {
    // Reused per thread so choosing an instance allocates nothing.
    static SCRATCH: std::cell::RefCell<(Vec<fulcrum_policy::Slot>, Vec<fulcrum_policy::Candidate>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn try_once(pool: &Arc<PoolRuntime>, clock: &Clock, excluded: &[usize]) -> Try {
    SCRATCH.with(|s| {
        let (slots, scratch) = &mut *s.borrow_mut();
        try_once_with(pool, clock, excluded, slots, scratch)
    })
}

fn try_once_with(
    pool: &Arc<PoolRuntime>,
    clock: &Clock,
    excluded: &[usize],
    slots: &mut Vec<fulcrum_policy::Slot>,
    scratch: &mut Vec<fulcrum_policy::Candidate>,
) -> Try {
    let mut ignore_health = false;
    // A lost CAS race re-reads the slots; bounded so a storm cannot spin us.
    for _ in 0..=pool.members.len() {
        pool.slots(clock.now_ms(), excluded, ignore_health, slots);
        match select(slots, pool.balancer.as_ref(), &mut ThreadRng, scratch) {
            SelectOutcome::Picked(i) => {
                let m = &pool.members[i];
                if m.inst.try_acquire(m.max_concurrent) {
                    return Try::Got(
                        i,
                        InFlightGuard::new(m.inst.clone(), Some(pool.waiters.clone())),
                    );
                }
            }
            SelectOutcome::Busy => return Try::Busy,
            SelectOutcome::Down if pool.cfg.panic && excluded.is_empty() && !ignore_health => {
                // Panic mode: every instance looks down; try them anyway.
                ignore_health = true;
            }
            SelectOutcome::Down => return Try::Down,
        }
    }
    Try::Busy
}

/// Decrements the pool's waiting count however the wait ends.
struct Waiting<'a>(&'a PoolRuntime);
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.waiting.fetch_sub(1, Relaxed);
    }
}

/// Chooses an instance of `pool` (never one of `excluded`) and holds an
/// in-flight slot on it.
pub async fn acquire(
    pool: &Arc<PoolRuntime>,
    clock: &Clock,
    excluded: &[usize],
) -> Result<(usize, InFlightGuard), ProxyError> {
    let name = || pool.cfg.name.clone();
    if pool.members.is_empty() {
        return Err(ProxyError::NoInstances { pool: name() });
    }
    match try_once(pool, clock, excluded) {
        Try::Got(i, g) => return Ok((i, g)),
        Try::Down => return Err(ProxyError::AllDown { pool: name() }),
        Try::Busy => {}
    }
    let q = pool.cfg.queue;
    if pool.waiters.waiting.fetch_add(1, Relaxed) >= q.max {
        pool.waiters.waiting.fetch_sub(1, Relaxed);
        return Err(ProxyError::QueueFull { pool: name() });
    }
    let _waiting = Waiting(pool);
    let deadline = tokio::time::Instant::now() + q.timeout;
    loop {
        let notified = pool.waiters.notify.notified();
        tokio::pin!(notified);
        // Register before re-checking so a release between the check and
        // the await is not lost.
        notified.as_mut().enable();
        match try_once(pool, clock, excluded) {
            Try::Got(i, g) => return Ok((i, g)),
            Try::Down => return Err(ProxyError::AllDown { pool: name() }),
            Try::Busy => {}
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(ProxyError::QueueTimeout { pool: name() });
        }
    }
}
