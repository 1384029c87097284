//! A pool's admission queue: requests waiting, in arrival order, for an
//! instance below `max_concurrent`.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// A pool's admission queue: requests waiting, in arrival order, for an
/// instance below `max_concurrent`.
///
/// Strict FIFO: only the request at the head may take a freed slot, and a
/// newcomer joins the back whenever anyone is waiting. A release wakes the
/// head; the head also re-checks every [`HEAD_RECHECK`] so an instance that
/// recovers or ends a cool-down (which frees no slot) is noticed too.
#[derive(Debug, Default)]
pub struct Waiters {
    queue: std::sync::Mutex<WaitQueue>,
    pub waiting: AtomicU32,
    /// Requests refused because the queue was full or its timeout passed
    /// (dropped, in the platform console's words), since start.
    pub rejected: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct WaitQueue {
    next_id: u64,
    q: std::collections::VecDeque<(u64, Arc<Notify>)>,
}

/// How often the head of a queue looks again without being woken.
pub const HEAD_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the request at the head of the queue, if any.
    pub fn wake_one(&self) {
        if self.waiting.load(Relaxed) > 0 {
            if let Some((_, n)) = self.lock().q.front() {
                n.notify_one();
            }
        }
    }

    /// Joins the back of the queue; returns the ticket and its bell.
    pub fn join(&self) -> (u64, Arc<Notify>) {
        let mut w = self.lock();
        let id = w.next_id;
        w.next_id += 1;
        let bell = Arc::new(Notify::new());
        w.q.push_back((id, bell.clone()));
        self.waiting.store(w.q.len() as u32, Relaxed);
        (id, bell)
    }

    /// Whether ticket `id` is at the head.
    pub fn is_head(&self, id: u64) -> bool {
        self.lock().q.front().is_some_and(|(h, _)| *h == id)
    }

    /// Leaves the queue (served, timed out or cancelled) and lets the next
    /// head look for a slot.
    pub fn leave(&self, id: u64) {
        let mut w = self.lock();
        w.q.retain(|(i, _)| *i != id);
        self.waiting.store(w.q.len() as u32, Relaxed);
        if let Some((_, n)) = w.q.front() {
            n.notify_one();
        }
    }
}
