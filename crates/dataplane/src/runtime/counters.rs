//! Per-request counters for `/metrics`: relaxed atomics in fixed arrays,
//! so counting a request takes no lock, no lookup and no allocation.
//! A pool's [`PoolCounters`] and each member's [`MemberCounters`] live in
//! the snapshot and are carried over by a rebuild (by pool name, and by
//! pool name and endpoint), like the pool's queue and cache.
//!
//! The histograms have fixed buckets in seconds, chosen for inference
//! (5 ms … 60 s), and are exposed as Prometheus histograms by the control
//! plane, which reads everything here at scrape time.

use fulcrum_policy::retry::Failure;
use fulcrum_policy::{PickReason, RequestClass};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the histogram buckets, seconds (`+Inf` is implied).
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];
/// The same bounds in microseconds, for the comparison on the request path.
const BUCKETS_US: [u64; 14] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 20_000_000, 30_000_000, 60_000_000,
];

/// A fixed-bucket histogram: one relaxed add for the bucket, one for the
/// sum. The count is the sum of the buckets, so a scrape always sees
/// `_count` equal to the `+Inf` bucket.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Not cumulative: `counts[i]` holds samples in `(BUCKETS[i-1], BUCKETS[i]]`,
    /// the last one those above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Samples so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Each bucket's upper bound (the last one `+Inf`) and its own count
    /// (not cumulative, as the exposition encoder wants them), and the sum
    /// in seconds.
    pub fn read(&self) -> ([(f64, u64); BUCKETS.len() + 1], f64) {
        let out = std::array::from_fn(|i| {
            let bound = BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            (bound, self.counts[i].load(Relaxed))
        });
        (out, self.sum_us.load(Relaxed) as f64 / 1e6)
    }
}

/// A response's status class: `1xx` … `5xx`, `other` (600–999), or
/// `none` (the request ended before any status: the caller left).
pub const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "none"];

/// The index in [`CLASSES`] of a status.
pub fn class(status: Option<http::StatusCode>) -> usize {
    match status.map(|s| s.as_u16() / 100) {
        Some(c @ 1..=5) => usize::from(c - 1),
        Some(_) => 5,
        None => 6,
    }
}

/// Why a try was retried: the failure's kind, statuses by class.
pub const RETRY_REASONS: [&str; 7] = [
    "connect_error",
    "reset",
    "invalid_response",
    "timeout",
    "http_4xx",
    "http_5xx",
    "http_other",
];

fn retry_index(f: Failure) -> usize {
    match f {
        Failure::ConnectError => 0,
        Failure::Reset => 1,
        Failure::InvalidResponse => 2,
        Failure::Timeout => 3,
        Failure::Status(s) if (400..500).contains(&s) => 4,
        Failure::Status(s) if (500..600).contains(&s) => 5,
        Failure::Status(_) => 6,
    }
}

/// Why the admission queue refused a request: it was `full`, its
/// `timeout` passed, or its place was given to a higher class (`shed`).
pub const QUEUE_REJECTIONS: [&str; 3] = ["full", "timeout", "shed"];

/// Requests by status class.
pub type ByClass = [AtomicU64; CLASSES.len()];

/// One pool's counters (and, for requests no pool took, the gateway's).
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Requests of the pool that no instance answered (queue full or timed
    /// out, every instance down, a cache hit, …), by class.
    pub unserved: ByClass,
    /// From arrival to the end of the response.
    pub duration: Histogram,
    /// From arrival to the response head.
    pub head: Histogram,
    /// Time spent in the admission queue, by every request that waited, by
    /// [`RequestClass::index`].
    pub queue_wait: [Histogram; RequestClass::ALL.len()],
    /// Requests the queue refused, by [`RequestClass::index`] and
    /// [`QUEUE_REJECTIONS`].
    pub queue_rejections: [[AtomicU64; QUEUE_REJECTIONS.len()]; RequestClass::ALL.len()],
    /// Retries by [`RETRY_REASONS`].
    pub retries: [AtomicU64; RETRY_REASONS.len()],
    /// Acquired slots by [`PickReason::ALL`]: one per try.
    pub picks: [AtomicU64; PickReason::ALL.len()],
}

impl PoolCounters {
    pub fn retried(&self, f: Failure) {
        self.retries[retry_index(f)].fetch_add(1, Relaxed);
    }

    pub fn picked(&self, r: PickReason) {
        self.picks[r.index()].fetch_add(1, Relaxed);
    }

    /// Counts a request of `class` the queue refused, for the reason at
    /// `reason` in [`QUEUE_REJECTIONS`].
    pub fn refused(&self, class: RequestClass, reason: usize) {
        self.queue_rejections[class.index()][reason].fetch_add(1, Relaxed);
    }

    /// Requests the queue refused for the reason at `reason`, every class.
    pub fn refused_total(&self, reason: usize) -> u64 {
        self.queue_rejections
            .iter()
            .map(|c| c[reason].load(Relaxed))
            .sum()
    }
}

/// One instance as a member of one pool.
#[derive(Debug, Default)]
pub struct MemberCounters {
    /// Requests this member answered (or was tried last for), by class.
    pub requests: ByClass,
    /// Tries sent to it, retries included.
    pub tries: AtomicU64,
}

/// Reads a counter array.
pub fn read<const N: usize>(a: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| a[i].load(Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_at_or_above_them() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(5)); // on the bound: le=0.005
        h.observe(Duration::from_millis(6)); // le=0.01
        h.observe(Duration::from_secs(61)); // +Inf only
        let (b, sum) = h.read();
        assert_eq!(b[0], (0.005, 1));
        assert_eq!(b[1], (0.01, 1));
        assert_eq!(b[BUCKETS.len() - 1], (60.0, 0));
        assert_eq!(b[BUCKETS.len()], (f64::INFINITY, 1));
        assert!((sum - 61.011).abs() < 1e-9);
    }

    #[test]
    fn classes_by_first_digit_and_none_without_status() {
        let s = |c| Some(http::StatusCode::from_u16(c).unwrap());
        assert_eq!(CLASSES[class(s(101))], "1xx");
        assert_eq!(CLASSES[class(s(204))], "2xx");
        assert_eq!(CLASSES[class(s(503))], "5xx");
        assert_eq!(CLASSES[class(s(999))], "other");
        assert_eq!(CLASSES[class(None)], "none");
    }

    #[test]
    fn bucket_bounds_agree() {
        for (s, us) in BUCKETS.iter().zip(BUCKETS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
        assert_eq!(RETRY_REASONS[retry_index(Failure::Status(503))], "http_5xx");
    }
}
