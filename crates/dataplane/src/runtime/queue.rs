//! A pool's admission queue: requests waiting for an instance below
//! `max_concurrent`, served by class (`interactive`, then `normal`, then
//! `batch`; see [`RequestClass`]) and in arrival order within a class.

use fulcrum_policy::RequestClass;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// The number of request classes (the queue's lanes).
const CLASSES: usize = RequestClass::ALL.len();

/// A pool's admission queue: requests waiting for an instance below
/// `max_concurrent`.
///
/// One FIFO lane per request class. Only the request at the head may take
/// a freed slot: the front of the first non-empty lane, so a waiting
/// `interactive` request goes before every `normal` one, which goes before
/// every `batch` one, and arrival order holds within a lane. A newcomer
/// joins its lane whenever someone of its class or a higher one is
/// waiting. A release wakes the head; the head also re-checks every
/// [`HEAD_RECHECK`] so an instance that recovers or ends a cool-down (which
/// frees no slot) is noticed too.
///
/// Under overload `batch` gives way: when the queue is full, an
/// `interactive` or `normal` newcomer takes the place of the newest
/// waiting `batch` request, which is refused ([`Joined::Full`] is only for
/// a newcomer that finds no `batch` request to displace). There is no
/// starvation guard: a `batch` request waits as long as higher classes
/// keep the pool busy, up to the queue's timeout (`queue.reserve` keeps
/// slots from batch, not for it).
#[derive(Debug, Default)]
pub struct Waiters {
    queue: std::sync::Mutex<WaitQueue>,
    /// Requests waiting now, every class.
    pub waiting: AtomicU32,
    /// Requests waiting now, by [`RequestClass::index`].
    pub by_class: [AtomicU32; CLASSES],
    /// Requests refused because the queue was full, their place was given
    /// to a higher class or the timeout passed (dropped, in the platform
    /// console's words), since start.
    pub rejected: AtomicU64,
}

#[derive(Debug, Default)]
struct WaitQueue {
    next_id: u64,
    lanes: [VecDeque<(u64, Arc<Bell>)>; CLASSES],
}

impl WaitQueue {
    fn head(&self) -> Option<&(u64, Arc<Bell>)> {
        self.lanes.iter().find_map(|l| l.front())
    }
}

/// What wakes a waiting request: a slot may be free, or its place in the
/// queue was given to a higher class.
#[derive(Debug, Default)]
pub struct Bell {
    notify: Notify,
    shed: AtomicBool,
}

impl Bell {
    /// Waits for the next ring (or takes one that came since the last).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Whether this request lost its place to a higher class.
    pub fn is_shed(&self) -> bool {
        self.shed.load(Relaxed)
    }
}

/// How a request's try to join the queue ended.
#[derive(Debug)]
pub enum Joined {
    /// In the queue, with its ticket and its bell.
    Waiting(u64, Arc<Bell>),
    /// The queue is full of requests of its class or a higher one.
    Full,
}

/// How often the head of a queue looks again without being woken.
pub const HEAD_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests of `class` or a higher one waiting now: those a newcomer
    /// of `class` must queue behind. One atomic load while nobody waits.
    pub fn ahead_of(&self, class: RequestClass) -> u32 {
        if self.waiting.load(Relaxed) == 0 {
            return 0;
        }
        self.by_class[..=class.index()]
            .iter()
            .map(|n| n.load(Relaxed))
            .sum()
    }

    /// Wakes the request at the head of the queue, if any.
    pub fn wake_one(&self) {
        if self.waiting.load(Relaxed) > 0 {
            if let Some((_, b)) = self.lock().head() {
                b.notify.notify_one();
            }
        }
    }

    /// Joins the back of `class`'s lane if fewer than `max` wait, or in
    /// the place of the newest `batch` request when `class` is higher.
    pub fn join(&self, class: RequestClass, max: u32) -> Joined {
        let mut w = self.lock();
        if self.waiting.load(Relaxed) >= max {
            let batch = RequestClass::Batch.index();
            if class == RequestClass::Batch {
                return Joined::Full;
            }
            let Some((_, shed)) = w.lanes[batch].pop_back() else {
                return Joined::Full;
            };
            shed.shed.store(true, Relaxed);
            shed.notify.notify_one();
        }
        let id = w.next_id;
        w.next_id += 1;
        let bell = Arc::new(Bell::default());
        w.lanes[class.index()].push_back((id, bell.clone()));
        self.count(&w);
        Joined::Waiting(id, bell)
    }

    /// Whether ticket `id` is at the head.
    pub fn is_head(&self, id: u64) -> bool {
        self.lock().head().is_some_and(|(h, _)| *h == id)
    }

    /// Leaves the queue (served, timed out or cancelled; a request whose
    /// place was given away has left already) and lets the next head look
    /// for a slot.
    pub fn leave(&self, id: u64, class: RequestClass) {
        let mut w = self.lock();
        let lane = &mut w.lanes[class.index()];
        if let Some(at) = lane.iter().position(|(i, _)| *i == id) {
            lane.remove(at);
        }
        self.count(&w);
        if let Some((_, b)) = w.head() {
            b.notify.notify_one();
        }
    }

    /// Publishes the lanes' lengths (under the lock, so they agree).
    fn count(&self, w: &WaitQueue) {
        let mut all = 0;
        for (n, lane) in self.by_class.iter().zip(&w.lanes) {
            n.store(lane.len() as u32, Relaxed);
            all += lane.len() as u32;
        }
        self.waiting.store(all, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestClass::{Batch, Interactive, Normal};

    fn ticket(j: Joined) -> (u64, Arc<Bell>) {
        match j {
            Joined::Waiting(id, b) => (id, b),
            Joined::Full => panic!("queue full"),
        }
    }

    #[test]
    fn the_head_is_the_oldest_of_the_highest_waiting_class() {
        let w = Waiters::default();
        let (b0, _) = ticket(w.join(Batch, 10));
        let (n0, _) = ticket(w.join(Normal, 10));
        let (n1, _) = ticket(w.join(Normal, 10));
        assert!(w.is_head(n0));
        let (i0, _) = ticket(w.join(Interactive, 10));
        assert!(w.is_head(i0), "an interactive newcomer goes first");
        w.leave(i0, Interactive);
        assert!(w.is_head(n0));
        w.leave(n0, Normal);
        assert!(w.is_head(n1), "arrival order within a class");
        w.leave(n1, Normal);
        assert!(w.is_head(b0));
        w.leave(b0, Batch);
        assert_eq!(w.waiting.load(Relaxed), 0);
    }

    #[test]
    fn a_newcomer_queues_behind_its_own_class_and_higher_ones_only() {
        let w = Waiters::default();
        assert_eq!(w.ahead_of(Interactive), 0);
        ticket(w.join(Batch, 10));
        ticket(w.join(Normal, 10));
        assert_eq!(w.ahead_of(Interactive), 0);
        assert_eq!(w.ahead_of(Normal), 1);
        assert_eq!(w.ahead_of(Batch), 2);
        assert_eq!(
            w.by_class
                .iter()
                .map(|n| n.load(Relaxed))
                .collect::<Vec<_>>(),
            [0, 1, 1]
        );
    }

    #[test]
    fn a_full_queue_sheds_its_newest_batch_request_for_a_higher_class() {
        let w = Waiters::default();
        let (b0, bell0) = ticket(w.join(Batch, 3));
        let (b1, bell1) = ticket(w.join(Batch, 3));
        ticket(w.join(Normal, 3));
        assert!(matches!(w.join(Batch, 3), Joined::Full), "batch is refused");
        let (i0, _) = ticket(w.join(Interactive, 3));
        assert!(bell1.is_shed(), "the newest batch request gives way");
        assert!(!bell0.is_shed());
        assert_eq!(w.waiting.load(Relaxed), 3, "still full, never over");
        assert_eq!(w.ahead_of(Batch), 3);
        // The shed request's own leave finds nothing to remove.
        w.leave(b1, Batch);
        assert_eq!(w.waiting.load(Relaxed), 3);
        ticket(w.join(Normal, 3));
        assert!(bell0.is_shed());
        assert!(
            matches!(w.join(Interactive, 3), Joined::Full),
            "no batch request left to displace"
        );
        assert!(w.is_head(i0));
        let _ = b0;
    }

    #[test]
    fn no_queue_at_all_refuses_every_class() {
        let w = Waiters::default();
        for c in RequestClass::ALL {
            assert!(matches!(w.join(c, 0), Joined::Full));
        }
    }

    #[tokio::test]
    async fn a_shed_request_is_rung() {
        let w = Waiters::default();
        let (_, bell) = ticket(w.join(Batch, 1));
        let rung = bell.notified();
        ticket(w.join(Interactive, 1));
        rung.await;
        assert!(bell.is_shed());
    }
}
