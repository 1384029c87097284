//! One instance's tries over a recent window (`stats.window`, 60 s by
//! default) next to its since-start error counts, so the admin plane can
//! compare like with like: an incident an hour ago leaves the window and
//! stays only in the since-start columns.
//!
//! The window is a ring of [`SLOTS`] time slots, each `window / SLOTS`
//! long, of relaxed atomics: a try's count, its error and its time to
//! response head are added to the slot of the clock value it ended at,
//! and a slot whose time has passed is cleared by the first try that
//! lands in it again (lazy rotation; no timer, no lock). A reader sums the
//! slots still inside the window: the current, partly filled slot and the
//! `SLOTS - 1` before it, so between `window × 11/12` and `window` of
//! history.
//!
//! Each slot's latency histogram is coarser than the since-start
//! [`Histogram`](super::histogram::Histogram): 8 buckets per power of two
//! over 1 µs … 71 min (240 `u32` counters, under 1 KiB a slot, 12 KiB an
//! instance), read at each bucket's middle, so a percentile is within
//! ±6.25 % of the true sample's value (the since-start one is up to 6.25 %
//! low: it reads bucket lower bounds).
//!
//! What counts (see [`Window::record`]): a *try* is one attempt on the
//! instance that got a response head or failed in the instance's fault;
//! an *error* is such a try that failed in the instance's fault (no head:
//! refused, reset, timed out, invalid; or a status listed in `retry.on`;
//! or a `101` nobody asked for) or was answered with a 5xx status. Tries
//! that end in the caller's or the gateway's fault count nowhere here.
//!
//! Where the idea comes from: the rolling windows of Hystrix's
//! `HystrixRollingNumber` and Finagle's windowed stats, minus their locks.

use serde::Serialize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots in the ring (the window's resolution: a twelfth of it).
pub const SLOTS: usize = 12;
/// Histogram buckets per power of two (≤ 12.5 % wide, read at the middle).
const SUB: u32 = 8;
/// Buckets up to 2^32 µs (71 min); longer samples land in the last one.
const BUCKETS: usize = SUB as usize * 30;
/// A slot being cleared: tries that meet it are not counted (a few
/// nanoseconds once a slot-length; dropping is simpler than waiting).
const CLEARING: u64 = u64::MAX;

struct Slot {
    /// Which slot of time this holds: `now_ms / slot_ms + 1`; 0 = empty.
    epoch: AtomicU64,
    tries: AtomicU32,
    errors: AtomicU32,
    latency: [AtomicU32; BUCKETS],
}

impl Slot {
    fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            tries: AtomicU32::new(0),
            errors: AtomicU32::new(0),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    fn clear(&self) {
        self.tries.store(0, Relaxed);
        self.errors.store(0, Relaxed);
        for b in &self.latency {
            b.store(0, Relaxed);
        }
    }
}

/// The recent window and the since-start error counts of one instance.
pub struct Window {
    slot_ms: AtomicU64,
    slots: Box<[Slot]>,
    tries_total: AtomicU64,
    errors_total: AtomicU64,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Window({} ms, {} tries since start)",
            self.slot_ms.load(Relaxed) * SLOTS as u64,
            self.tries_total.load(Relaxed)
        )
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::new(fulcrum_config::defaults::DEFAULT_STATS_WINDOW.as_millis() as u64)
    }
}

/// The slot length for a window of `window_ms` (at least 1 ms).
fn slot_ms(window_ms: u64) -> u64 {
    window_ms.div_ceil(SLOTS as u64).max(1)
}

fn index(us: u64) -> usize {
    if us < u64::from(SUB) {
        return us as usize;
    }
    let log = 63 - us.leading_zeros(); // ≥ 3
    let sub = (us >> (log - 3)) & u64::from(SUB - 1);
    (((log - 2) * SUB) as usize + sub as usize).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in µs.
fn middle(i: usize) -> f64 {
    if i < SUB as usize {
        return i as f64;
    }
    let log = (i as u32) / SUB + 2;
    let sub = (i as u32 % SUB) as u64;
    let lower = (1u64 << log) | (sub << (log - 3));
    lower as f64 + (1u64 << (log - 3)) as f64 / 2.0
}

impl Window {
    /// A ring covering `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        Self {
            slot_ms: AtomicU64::new(slot_ms(window_ms)),
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
            tries_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
        }
    }

    /// The window's length in ms (a whole number of slots).
    pub fn window_ms(&self) -> u64 {
        self.slot_ms.load(Relaxed) * SLOTS as u64
    }

    /// Sets the window's length (a reload); a new length starts the
    /// window afresh. The since-start counts are kept.
    pub fn set_window_ms(&self, window_ms: u64) {
        let new = slot_ms(window_ms);
        if self.slot_ms.swap(new, Relaxed) != new {
            for s in self.slots.iter() {
                s.epoch.store(0, Release);
            }
        }
    }

    /// Counts one try that ended at `now_ms`: `head_us` is its time to
    /// response head when one came, `error` whether it is an error (the
    /// module doc says which tries are). A few relaxed atomic adds; the
    /// first try of a new slot clears it first.
    pub fn record(&self, now_ms: u64, head_us: Option<u64>, error: bool) {
        self.tries_total.fetch_add(1, Relaxed);
        if error {
            self.errors_total.fetch_add(1, Relaxed);
        }
        let Some(slot) = self.slot_at(now_ms) else {
            return;
        };
        slot.tries.fetch_add(1, Relaxed);
        if error {
            slot.errors.fetch_add(1, Relaxed);
        }
        if let Some(us) = head_us {
            slot.latency[index(us)].fetch_add(1, Relaxed);
        }
    }

    /// The slot for `now_ms`, cleared if it still holds an older slot of
    /// time; `None` when it already holds a newer one (a clock value read
    /// long before it is recorded) or is being cleared by another thread.
    fn slot_at(&self, now_ms: u64) -> Option<&Slot> {
        let epoch = now_ms / self.slot_ms.load(Relaxed) + 1;
        let slot = &self.slots[(epoch % SLOTS as u64) as usize];
        let held = slot.epoch.load(Acquire);
        if held == epoch {
            return Some(slot);
        }
        if held == CLEARING || held > epoch {
            return None;
        }
        // Older: the first to swap it out clears it, then opens it.
        slot.epoch
            .compare_exchange(held, CLEARING, Acquire, Relaxed)
            .ok()?;
        slot.clear();
        slot.epoch.store(epoch, Release);
        Some(slot)
    }

    /// Tries and errors since start.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.tries_total.load(Relaxed),
            self.errors_total.load(Relaxed),
        )
    }

    /// The window as it stands at `now_ms` (`share` left at 0: it is the
    /// pool's to compute).
    pub fn stats(&self, now_ms: u64) -> WindowStats {
        let mut sum = WindowSum::default();
        self.add_to(now_ms, &mut sum);
        sum.stats()
    }

    /// Adds the window as it stands at `now_ms` to `sum` (a pool's windows
    /// are summed into one; they share `stats.window`).
    pub fn add_to(&self, now_ms: u64, sum: &mut WindowSum) {
        let width = self.slot_ms.load(Relaxed);
        let now_epoch = now_ms / width + 1;
        let oldest = now_epoch.saturating_sub(SLOTS as u64 - 1).max(1);
        for s in self.slots.iter() {
            let e = s.epoch.load(Acquire);
            if e == CLEARING || e < oldest || e > now_epoch {
                continue;
            }
            let (t, er) = (s.tries.load(Relaxed), s.errors.load(Relaxed));
            let lat: [u32; BUCKETS] = std::array::from_fn(|i| s.latency[i].load(Relaxed));
            if s.epoch.load(Acquire) != e {
                continue; // Rotated while read: its counts are a newer slot's.
            }
            sum.tries += u64::from(t);
            sum.errors += u64::from(er);
            for (b, n) in sum.buckets.iter_mut().zip(lat) {
                *b += u64::from(n);
            }
        }
        // From the oldest slot's start (or the clock's start) to now.
        sum.span_ms = sum.span_ms.max(now_ms - (oldest - 1) * width);
        sum.secs = sum.secs.max(self.window_ms() / 1000);
    }
}

/// Windows summed: tries, errors and latency buckets (a pool's members,
/// or one instance).
#[derive(Debug, Clone)]
pub struct WindowSum {
    secs: u64,
    span_ms: u64,
    tries: u64,
    errors: u64,
    buckets: Box<[u64; BUCKETS]>,
}

impl Default for WindowSum {
    fn default() -> Self {
        Self {
            secs: 0,
            span_ms: 0,
            tries: 0,
            errors: 0,
            buckets: Box::new([0; BUCKETS]),
        }
    }
}

impl WindowSum {
    /// What the summed windows say (`share` left at 0).
    pub fn stats(&self) -> WindowStats {
        let quantile = |q: f64| quantile_ms(&self.buckets, q);
        WindowStats {
            secs: self.secs,
            requests: self.tries,
            rps: self.tries as f64 * 1000.0 / self.span_ms.max(1) as f64,
            errors: self.errors,
            error_rate: rate(self.errors, self.tries),
            mean_ms: mean_ms(&self.buckets),
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            share: 0.0,
        }
    }
}

/// The mean of the summed buckets (each read at its middle), in ms.
fn mean_ms(buckets: &[u64; BUCKETS]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let sum: f64 = buckets
        .iter()
        .enumerate()
        .map(|(i, &n)| middle(i) * n as f64)
        .sum();
    Some(sum / total as f64 / 1000.0)
}

/// `part / whole`, 0 when `whole` is.
pub fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The `q` quantile of the summed buckets, in ms; `None` without samples.
fn quantile_ms(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    let i = buckets.iter().position(|n| {
        seen += n;
        seen >= rank
    })?;
    Some(middle(i) / 1000.0)
}

/// An instance's recent window, as `/api/v1/pools` shows it (`window`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WindowStats {
    /// The window's length (`stats.window`): these numbers cover between
    /// 11/12 of it and all of it, less just after start-up.
    pub secs: u64,
    /// Tries that ended in the window (got a response head, or failed in
    /// the instance's fault).
    pub requests: u64,
    /// `requests` per second over the time the window covers.
    pub rps: f64,
    /// Of those tries, the errors: failed in the instance's fault, or
    /// answered with a 5xx status.
    pub errors: u64,
    /// `errors / requests` (0 without requests).
    pub error_rate: f64,
    /// Mean time to response head in the window (±6.25 %), `None` without
    /// answers.
    pub mean_ms: Option<f64>,
    /// Time to response head in the window (±6.25 %), `None` without
    /// answers.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// This instance's part of its pool's `requests` in the window (the
    /// recent counterpart of the since-start `share`).
    pub share: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 60 s window: 5 s slots.
    fn w() -> Window {
        Window::new(60_000)
    }

    #[test]
    fn tries_errors_and_rate_in_the_window() {
        let w = w();
        for i in 0..10u64 {
            w.record(1_000 + i * 1_000, Some(10_000), i % 5 == 0);
        }
        w.record(11_000, None, true); // refused: no latency sample
        let s = w.stats(20_000);
        assert_eq!((s.secs, s.requests, s.errors), (60, 11, 3));
        assert!((s.error_rate - 3.0 / 11.0).abs() < 1e-9);
        assert!((s.rps - 11.0 / 20.0).abs() < 1e-9, "{}", s.rps);
        assert_eq!(w.totals(), (11, 3));
    }

    #[test]
    fn old_slots_leave_the_window_one_slot_at_a_time() {
        let w = w();
        w.record(0, Some(1_000), false); // slot [0, 5 s)
        w.record(5_000, Some(1_000), true); // slot [5, 10 s)
        assert_eq!(w.stats(59_999).requests, 2, "all within 60 s");
        // At 60 s the ring covers [5 s, 60 s]: the first slot is out.
        let s = w.stats(60_000);
        assert_eq!((s.requests, s.errors), (1, 1));
        assert_eq!(w.stats(65_000).requests, 0);
        assert_eq!(w.totals(), (2, 1), "since start keeps them");
    }

    #[test]
    fn a_rotated_slot_is_cleared_by_its_first_new_try() {
        let w = w();
        for _ in 0..5 {
            w.record(2_000, Some(500_000), true);
        }
        // 60 s later the same ring slot holds [60, 65 s).
        w.record(62_000, Some(1_000), false);
        let s = w.stats(62_000);
        assert_eq!((s.requests, s.errors), (1, 0));
        let p99 = s.p99_ms.unwrap();
        assert!((p99 - 1.0).abs() < 0.07, "{p99}");
    }

    #[test]
    fn a_gap_longer_than_the_window_leaves_it_empty() {
        let w = w();
        for t in (0..60_000).step_by(1_000) {
            w.record(t, Some(20_000), false);
        }
        let s = w.stats(10 * 60_000);
        assert_eq!((s.requests, s.rps, s.p99_ms), (0, 0.0, None));
        w.record(10 * 60_000, Some(1_000), false);
        assert_eq!(w.stats(10 * 60_000 + 1).requests, 1);
        assert_eq!(w.totals().0, 61);
    }

    #[test]
    fn clock_values_out_of_order_count_once_or_not_at_all() {
        let w = w();
        w.record(70_000, Some(1_000), false);
        // Read 60 s before it was recorded: the ring slot now holds
        // [70, 75 s), newer than [10, 15 s). Dropped from the window,
        // counted since start.
        w.record(10_000, Some(1_000), true);
        assert_eq!(w.stats(70_000).requests, 1);
        assert_eq!(w.totals(), (2, 1));
        // A little late (an earlier slot still in the window) counts.
        w.record(66_000, Some(1_000), true);
        assert_eq!(w.stats(70_000).errors, 1);
        // Read at a time before the slots (a reader's clock behind the
        // recorder's): newer slots are left out, nothing panics.
        assert_eq!(w.stats(64_000).requests, 0);
        assert_eq!(w.stats(0).requests, 0);
    }

    #[test]
    fn percentiles_of_a_known_distribution_within_the_stated_error() {
        let w = w();
        for ms in 1..=100u64 {
            w.record(1_000, Some(ms * 1_000), false);
        }
        let s = w.stats(1_000);
        for (got, want) in [(s.p50_ms, 50.0), (s.p90_ms, 90.0), (s.p99_ms, 99.0)] {
            let got = got.unwrap();
            assert!((got - want).abs() / want <= 0.0625, "{got} vs {want}");
        }
    }

    #[test]
    fn a_new_length_starts_the_window_afresh() {
        let w = w();
        w.record(1_000, Some(1_000), false);
        w.set_window_ms(60_000);
        assert_eq!(w.stats(1_000).requests, 1, "same length: kept");
        w.set_window_ms(12_000);
        assert_eq!(w.window_ms(), 12_000);
        assert_eq!(w.stats(1_000).requests, 0);
        w.record(1_000, Some(1_000), false);
        assert_eq!(w.stats(12_999).requests, 1);
        assert_eq!(w.stats(13_000).requests, 0, "1 s slots");
        assert_eq!(w.totals().0, 2);
    }

    proptest! {
        #[test]
        fn a_bucket_middle_is_within_a_sixteenth_of_its_samples(us in 8u64..(1 << 32)) {
            let m = middle(index(us));
            prop_assert!((m - us as f64).abs() <= us as f64 / 16.0, "{us} read as {m}");
        }
    }
}
