//! Request classes in the simulated gateway: which class
//! ([`RequestClass`]: `interactive`, `normal`, `batch`) each client sends,
//! and the admission queue's rules for them — the data plane's
//! (`runtime/queue.rs`, `proxy/admission.rs`), in virtual time:
//!
//! * one FIFO lane per class; the head is the oldest request of the
//!   highest class waiting, and only the head may take a freed slot;
//! * a newcomer queues while a request of its class or a higher one
//!   waits, and takes a free slot at once when only lower classes wait;
//! * a full queue gives the place of its newest `batch` request to an
//!   arriving `interactive` or `normal` one (that `batch` request is
//!   refused at once: a 503 with `Retry-After: 1` in the data plane);
//!   an arrival that finds no `batch` request to displace is refused;
//! * a `batch` request takes a slot only while more than `queue.reserve`
//!   slots of the pool's usable instances are free.
//!
//! Without a [`ClassMix`](crate::model::ClassMix) every request is
//! `normal` and the reserve 0, so the queue is the single FIFO it always
//! was.

use crate::instance::Inst;
use crate::report::{ClassReport, Latency};
use fulcrum_policy::RequestClass;
use std::collections::VecDeque;

/// How a request's try to join the queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    Waiting,
    /// Waiting, in the place of this client's `batch` request, refused.
    Displaced(usize),
    Full,
}

/// The admission queue: one FIFO lane of clients per class.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    lanes: [VecDeque<usize>; RequestClass::ALL.len()],
}

impl Lanes {
    pub fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// Requests of `class` or a higher one waiting: those a newcomer of
    /// `class` queues behind.
    pub fn ahead_of(&self, class: RequestClass) -> usize {
        self.lanes[..=class.index()].iter().map(VecDeque::len).sum()
    }

    /// Joins `class`'s lane if fewer than `max` wait, or in the place of
    /// the newest `batch` request when `class` is higher.
    pub fn join(&mut self, client: usize, class: RequestClass, max: usize) -> Join {
        let mut joined = Join::Waiting;
        if self.len() >= max {
            if class == RequestClass::Batch {
                return Join::Full;
            }
            match self.lanes[RequestClass::Batch.index()].pop_back() {
                Some(shed) => joined = Join::Displaced(shed),
                None => return Join::Full,
            }
        }
        self.lanes[class.index()].push_back(client);
        joined
    }

    /// The head: the oldest client of the highest class waiting.
    pub fn head(&self) -> Option<(usize, RequestClass)> {
        RequestClass::ALL
            .into_iter()
            .find_map(|c| self.lanes[c.index()].front().map(|&client| (client, c)))
    }

    /// Takes `client` out of `class`'s lane (served or timed out).
    pub fn remove(&mut self, client: usize, class: RequestClass) {
        self.lanes[class.index()].retain(|&w| w != client);
    }
}

/// Whether a request of `class` may take a slot now: always, but for
/// `batch` while no more than `reserve` slots of the usable instances are
/// free (one without `max_concurrent` always has room; with no usable
/// instance the view decides).
pub(crate) fn room_for(class: RequestClass, reserve: u32, insts: &[Inst<'_>], now_ms: u64) -> bool {
    if class != RequestClass::Batch || reserve == 0 {
        return true;
    }
    let (mut free, mut usable) = (0u32, false);
    for s in insts.iter().filter(|s| !s.model.is_down(now_ms)) {
        usable = true;
        match s.model.max_concurrent {
            None => return true,
            Some(max) => free = free.saturating_add(max.saturating_sub(s.in_flight)),
        }
    }
    !usable || free > reserve
}

/// Per class: served latencies, refusals, sheds.
#[derive(Debug, Default)]
pub(crate) struct ClassRecorder {
    latencies_us: [Vec<u64>; RequestClass::ALL.len()],
    rejected: [u64; RequestClass::ALL.len()],
    shed: [u64; RequestClass::ALL.len()],
}

impl ClassRecorder {
    pub fn served(&mut self, class: RequestClass, took_us: u64) {
        self.latencies_us[class.index()].push(took_us);
    }

    pub fn rejected(&mut self, class: RequestClass, shed: bool) {
        self.rejected[class.index()] += 1;
        self.shed[class.index()] += u64::from(shed);
    }

    pub fn finish(mut self) -> Vec<ClassReport> {
        RequestClass::ALL
            .into_iter()
            .map(|c| {
                let i = c.index();
                ClassReport {
                    class: c,
                    served: self.latencies_us[i].len() as u64,
                    rejected: self.rejected[i],
                    shed: self.shed[i],
                    latency: Latency::of(&mut self.latencies_us[i]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestClass::{Batch, Interactive, Normal};

    #[test]
    fn the_head_is_the_oldest_of_the_highest_class_and_newcomers_queue_behind_their_own() {
        let mut q = Lanes::default();
        assert_eq!(q.join(0, Batch, 10), Join::Waiting);
        assert_eq!(q.join(1, Normal, 10), Join::Waiting);
        assert_eq!(q.join(2, Normal, 10), Join::Waiting);
        assert_eq!(q.head(), Some((1, Normal)));
        assert_eq!(
            (
                q.ahead_of(Interactive),
                q.ahead_of(Normal),
                q.ahead_of(Batch)
            ),
            (0, 2, 3)
        );
        assert_eq!(q.join(3, Interactive, 10), Join::Waiting);
        assert_eq!(q.head(), Some((3, Interactive)));
        q.remove(3, Interactive);
        q.remove(1, Normal);
        assert_eq!(q.head(), Some((2, Normal)), "arrival order within a class");
    }

    #[test]
    fn a_full_queue_gives_the_newest_batch_place_to_a_higher_class() {
        let mut q = Lanes::default();
        q.join(0, Batch, 3);
        q.join(1, Batch, 3);
        q.join(2, Normal, 3);
        assert_eq!(q.join(3, Batch, 3), Join::Full, "batch is refused");
        assert_eq!(q.join(4, Interactive, 3), Join::Displaced(1));
        assert_eq!(q.len(), 3, "still full, never over");
        assert_eq!(q.join(5, Normal, 3), Join::Displaced(0));
        assert_eq!(
            q.join(6, Interactive, 3),
            Join::Full,
            "no batch left to displace"
        );
        assert_eq!(q.head(), Some((4, Interactive)));
    }
}
