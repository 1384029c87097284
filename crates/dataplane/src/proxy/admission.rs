//! Admission: from a pool snapshot to one acquired instance slot.
//!
//! Asks the policy's [`select`] for an instance, takes an in-flight slot on
//! it (a compare-and-swap that can lose a race, in which case we choose
//! again), and when every usable instance is at `max_concurrent`, waits in
//! the pool's bounded queue until a slot frees or the queue timeout passes.
//! The request's class orders the queue and decides who gives way when it
//! is full (`runtime/queue.rs`); a `batch` request also leaves the pool's
//! `queue.reserve` slots free.

use crate::clock::{Clock, Rng};
use crate::http::ProxyError;
use crate::runtime::events::Events;
use crate::runtime::queue::{Joined, HEAD_RECHECK};
use crate::runtime::{InFlightGuard, PoolRuntime};
use fulcrum_policy::view::choose;
use fulcrum_policy::{Change, PickContext, PickReason, RequestClass, Scratch, SelectOutcome};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

enum Try {
    Got(usize, InFlightGuard, PickReason),
    Busy,
    Down,
}

thread_local! {
    // Reused per thread so choosing an instance allocates nothing.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One choice through the policy's view, then the slot: a lost
/// compare-and-swap race chooses again (bounded so a storm cannot spin us).
fn try_once(pool: &PoolRuntime, env: Env<'_>, excluded: &[usize], key: Option<u64>) -> Try {
    SCRATCH.with(|s| {
        let scratch = &mut *s.borrow_mut();
        let mut view = pool.view;
        for _ in 0..=pool.members.len() {
            let now = env.clock.now_ms();
            let choice = env.rng.with(|rng| {
                let mut ctx = PickContext::keyed(rng, key);
                choose(
                    &view,
                    &pool.members,
                    excluded,
                    now,
                    pool.balancer.as_ref(),
                    &mut ctx,
                    scratch,
                )
            });
            apply(pool, &scratch.changes);
            view.ignore_health = choice.ignored_health;
            match choice.outcome {
                SelectOutcome::Picked(i) => {
                    let m = &pool.members[i];
                    if m.inst.try_acquire(m.max_concurrent) {
                        // Only a learning instance pays for the clock read.
                        let guard = match m.learn {
                            Some(_) => InFlightGuard::timed(m.inst.clone(), env.clock.instant()),
                            None => InFlightGuard::new(m.inst.clone()),
                        };
                        return Try::Got(i, guard, choice.reason);
                    }
                }
                SelectOutcome::Busy => return Try::Busy,
                SelectOutcome::Down => return Try::Down,
            }
        }
        Try::Busy
    })
}

/// The state changes the view asked for.
fn apply(pool: &PoolRuntime, changes: &[Change]) {
    for c in changes {
        match *c {
            Change::RaiseCalls { slot, floor } => {
                pool.members[slot].inst.calls.fetch_max(floor, Relaxed);
            }
        }
    }
}

/// The injected clock and random source, and the event log.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub clock: &'a Clock,
    pub rng: &'a Rng,
    /// The gateway's event log (an ejection, a cool-down starting).
    pub events: &'a Events,
}

/// Leaves the queue however the wait ends (served, timed out, shed,
/// cancelled), and counts how long it waited.
struct Ticket<'a> {
    pool: &'a PoolRuntime,
    id: u64,
    class: RequestClass,
    since: tokio::time::Instant,
}
impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.pool.waiters.leave(self.id, self.class);
        self.pool.counters.queue_wait[self.class.index()].observe(self.since.elapsed());
    }
}

/// Whether a request of `class` may take a slot now: always, but for a
/// `batch` request while no more than `queue.reserve` slots of the pool's
/// usable instances are free (an instance without `max_concurrent` always
/// has room). With no usable instance at all the choice decides (a 503,
/// or the ejected and panic fallbacks), as for any class. Only a batch
/// request of a pool with a reserve pays for the look at every member.
fn room_for(pool: &PoolRuntime, class: RequestClass, clock: &Clock) -> bool {
    let reserve = pool.cfg.queue.reserve;
    if class != RequestClass::Batch || reserve == 0 {
        return true;
    }
    let now_ms = clock.now_ms();
    let (mut free, mut usable) = (0u32, false);
    for m in pool.members.iter().filter(|m| m.inst.usable(now_ms)) {
        usable = true;
        match m.max_concurrent {
            None => return true,
            Some(max) => free = free.saturating_add(max.saturating_sub(m.inst.in_flight())),
        }
    }
    !usable || free > reserve
}

/// A request of `class` refused by the queue: counted, by class and by
/// why ([`QUEUE_REJECTIONS`](crate::runtime::counters::QUEUE_REJECTIONS)).
fn refuse(pool: &PoolRuntime, class: RequestClass, e: ProxyError) -> ProxyError {
    let reason = match e {
        ProxyError::QueueFull { .. } => 0,
        ProxyError::QueueTimeout { .. } => 1,
        _ => 2,
    };
    pool.waiters.rejected.fetch_add(1, Relaxed);
    pool.counters.refused(class, reason);
    e
}

/// A slot acquired: one pick counted for the pool, with its reason (every
/// acquired slot is one try, so the picks add up to the tries).
fn got(
    pool: &PoolRuntime,
    i: usize,
    g: InFlightGuard,
    r: PickReason,
) -> Result<(usize, InFlightGuard), ProxyError> {
    pool.counters.picked(r);
    pool.members[i].counters.tries.fetch_add(1, Relaxed);
    Ok((i, g))
}

/// Why no instance can take a request: an operator drained them all, or
/// they are down (the error path only).
fn none_usable(pool: &PoolRuntime) -> ProxyError {
    let pool_name = pool.cfg.name.clone();
    if pool.members.iter().all(|m| m.inst.is_drained()) {
        ProxyError::AllDrained { pool: pool_name }
    } else {
        ProxyError::AllDown { pool: pool_name }
    }
}

/// Chooses an instance of `pool` (never one of `excluded`) and holds an
/// in-flight slot on it, for a request of `class`.
pub async fn acquire(
    pool: &Arc<PoolRuntime>,
    env: Env<'_>,
    excluded: &[usize],
    key: Option<u64>,
    class: RequestClass,
) -> Result<(usize, InFlightGuard), ProxyError> {
    let name = || pool.cfg.name.clone();
    if pool.members.is_empty() {
        return Err(ProxyError::NoInstances { pool: name() });
    }
    // While others of its class or a higher one wait, a newcomer queues
    // behind them instead of taking the slot that was freed for them.
    if pool.waiters.ahead_of(class) == 0 && room_for(pool, class, env.clock) {
        match try_once(pool, env, excluded, key) {
            Try::Got(i, g, r) => return got(pool, i, g, r),
            Try::Down => return Err(none_usable(pool)),
            Try::Busy => {}
        }
    }
    let q = pool.cfg.queue;
    let (id, bell) = match pool.waiters.join(class, q.max) {
        Joined::Waiting(id, bell) => (id, bell),
        Joined::Full => return Err(refuse(pool, class, ProxyError::QueueFull { pool: name() })),
    };
    let _ticket = Ticket {
        pool,
        id,
        class,
        since: env.clock.instant(),
    };
    let deadline = env.clock.instant() + q.timeout;
    loop {
        let rung = bell.notified();
        tokio::pin!(rung);
        // Register before checking so a release in between is not lost.
        rung.as_mut().enable();
        if bell.is_shed() {
            return Err(refuse(pool, class, ProxyError::QueueShed { pool: name() }));
        }
        if pool.waiters.is_head(id) && room_for(pool, class, env.clock) {
            match try_once(pool, env, excluded, key) {
                Try::Got(i, g, _) => return got(pool, i, g, PickReason::QueueHandoff),
                Try::Down => return Err(none_usable(pool)),
                Try::Busy => {}
            }
        }
        if env.clock.instant() >= deadline {
            return Err(refuse(
                pool,
                class,
                ProxyError::QueueTimeout { pool: name() },
            ));
        }
        let wake = deadline.min(env.clock.instant() + HEAD_RECHECK);
        let _ = tokio::time::timeout_at(wake, rung).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Snapshot;
    use RequestClass::Normal;

    static THREAD: Rng = Rng::Thread;

    fn env(clock: &Clock) -> Env<'_> {
        static EVENTS: std::sync::LazyLock<Events> = std::sync::LazyLock::new(Events::default);
        Env {
            clock,
            rng: &THREAD,
            events: &EVENTS,
        }
    }
    use std::time::Duration;

    fn pool(yaml_extra: &str) -> Arc<PoolRuntime> {
        let yaml = format!(
            "pools:\n  p:\n{yaml_extra}    instances: [ {{ endpoint: \"http://127.0.0.1:1\", max_concurrent: 1 }} ]\n"
        );
        let cfg = fulcrum_config::parse(&yaml, &|_| None).unwrap();
        Snapshot::build(Arc::new(cfg), None, 0).pools[0].clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_times_out_after_the_queue_timeout() {
        let p = pool("    queue: { max: 10, timeout: 5s }\n");
        let clock = Clock::new();
        let (_, _held) = acquire(&p, env(&clock), &[], None, Normal).await.unwrap();
        let start = tokio::time::Instant::now();
        let err = acquire(&p, env(&clock), &[], None, Normal)
            .await
            .unwrap_err();
        assert_eq!(err, ProxyError::QueueTimeout { pool: "p".into() });
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(p.waiters.waiting.load(Relaxed), 0);
        assert_eq!(p.waiters.rejected.load(Relaxed), 1, "counted as dropped");
        assert_eq!(p.counters.refused_total(1), 1, "a timeout");
        let (waits, _) = p.counters.queue_wait[Normal.index()].read();
        let at = |le: f64| waits.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!((at(2.5), at(5.0), at(10.0)), (0, 1, 0), "one wait of 5 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_slot_goes_to_the_waiter() {
        let p = pool("    queue: { max: 10, timeout: 5s }\n");
        let clock = Clock::new();
        let (_, held) = acquire(&p, env(&clock), &[], None, Normal).await.unwrap();
        let waiter = tokio::spawn({
            let p = p.clone();
            async move {
                acquire(&p, env(&Clock::new()), &[], None, Normal)
                    .await
                    .map(|(i, _g)| i)
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(p.waiters.waiting.load(Relaxed), 1);
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(0));
        let picks = crate::runtime::counters::read(&p.counters.picks);
        assert_eq!(picks[PickReason::Algorithm.index()], 1);
        assert_eq!(picks[PickReason::QueueHandoff.index()], 1);
        assert_eq!(p.members[0].counters.tries.load(Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order_even_when_a_newcomer_arrives_at_the_release() {
        let p = pool("    queue: { max: 10, timeout: 30s }\n");
        let clock = Clock::new();
        let (_, held) = acquire(&p, env(&clock), &[], None, Normal).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let spawn = |name: &'static str| {
            let (p, order) = (p.clone(), order.clone());
            tokio::spawn(async move {
                let (_, g) = acquire(&p, env(&Clock::new()), &[], None, Normal)
                    .await
                    .unwrap();
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                drop(g);
            })
        };
        let w0 = spawn("waiter0");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let w1 = spawn("waiter1");
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The slot frees and a newcomer arrives at the same instant.
        drop(held);
        let n = spawn("newcomer");
        for t in [w0, w1, n] {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            vec!["waiter0", "waiter1", "newcomer"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once() {
        let p = pool("    queue: { max: 0 }\n");
        let clock = Clock::new();
        let (_, _held) = acquire(&p, env(&clock), &[], None, Normal).await.unwrap();
        assert_eq!(
            acquire(&p, env(&clock), &[], None, Normal)
                .await
                .unwrap_err(),
            ProxyError::QueueFull { pool: "p".into() }
        );
        assert_eq!(p.waiters.rejected.load(Relaxed), 1, "counted as dropped");
        assert_eq!(p.counters.refused_total(0), 1, "full");
    }

    #[tokio::test(start_paused = true)]
    async fn excluded_instances_are_not_chosen_and_all_excluded_is_down() {
        let p = pool("");
        let clock = Clock::new();
        assert_eq!(
            acquire(&p, env(&clock), &[0], None, Normal)
                .await
                .unwrap_err(),
            ProxyError::AllDown { pool: "p".into() }
        );
    }
}
