//! A lock-free latency histogram: log-linear buckets (16 per power of two,
//! ≤ 6.25 % relative error) over microseconds, one relaxed atomic add per
//! sample, so every response can be recorded on the request path.
//! Percentiles are read by the admin plane by scanning the buckets.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB: u32 = 16;
const BUCKETS: usize = (SUB as usize) * 40;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} samples)", self.count())
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn index(us: u64) -> usize {
    if us < u64::from(SUB) {
        return us as usize;
    }
    let log = 63 - us.leading_zeros(); // ≥ 4
    let sub = (us >> (log - 4)) & u64::from(SUB - 1);
    ((log - 3) * SUB) as usize + sub as usize
}

/// The smallest value of bucket `i` (the value reported for it).
fn lower(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let log = (i as u32) / SUB + 3;
    let sub = (i as u32 % SUB) as u64;
    (1u64 << log) | (sub << (log - 4))
}

impl Histogram {
    pub fn record_us(&self, us: u64) {
        self.counts[index(us).min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The mean in milliseconds (each sample counted at its bucket's lower
    /// bound, ≤ 6.25 % low); `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        let (n, sum_ms) = self.totals();
        (n > 0).then(|| sum_ms / n as f64)
    }

    /// The count of samples and their sum in milliseconds (each counted at
    /// its bucket's lower bound), since start: two readings some time
    /// apart give that time's mean (the dynamic-weights task does).
    pub fn totals(&self) -> (u64, f64) {
        let (n, sum, _) = self.moments();
        (n, sum)
    }

    /// Like [`Histogram::totals`], with the sum of the squares in ms²
    /// (each sample counted at its bucket's lower bound): two readings
    /// give that time's mean and spread. (Learned limits need exact sums:
    /// [`super::moments`].)
    pub fn moments(&self) -> (u64, f64, f64) {
        let (mut n, mut sum, mut sq) = (0u64, 0f64, 0f64);
        for (i, c) in self.counts.iter().enumerate() {
            let c = c.load(Relaxed);
            let us = lower(i) as f64;
            n += c;
            sum += c as f64 * us;
            sq += c as f64 * us * us;
        }
        (n, sum / 1e3, sq / 1e6)
    }

    /// The largest sample's bucket in milliseconds; `None` without samples.
    pub fn max_ms(&self) -> Option<f64> {
        self.counts
            .iter()
            .rposition(|c| c.load(Relaxed) > 0)
            .map(|i| lower(i) as f64 / 1000.0)
    }

    /// The `q` quantile (0..=1) in milliseconds; `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let snapshot: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = snapshot.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in snapshot.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(lower(i) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record_us(ms * 1000);
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.07, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.07, "{p99}");
        assert_eq!(h.count(), 100);
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }

    proptest! {
        #[test]
        fn buckets_are_monotone_and_tight(us in 0u64..1_000_000_000_000) {
            let i = index(us).min(BUCKETS - 1);
            let lo = lower(i);
            prop_assert!(lo <= us);
            if i < BUCKETS - 1 {
                prop_assert!(us < lower(i + 1));
                prop_assert!((us - lo) as f64 <= us as f64 / 16.0 + 1.0);
            }
        }
    }

    #[test]
    fn moments_give_the_spread() {
        let h = Histogram::default();
        assert_eq!(h.moments(), (0, 0.0, 0.0));
        for ms in [1u64, 2, 4, 8] {
            h.record_us(ms * 1000);
        }
        // Each sample counts at its bucket's lower bound (≤ 6.25 % low).
        let (n, sum, sq) = h.moments();
        assert_eq!(n, 4);
        assert!((14.0..=15.0).contains(&sum), "{sum}");
        assert!((80.0..=85.0).contains(&sq), "{sq}");
        assert_eq!(h.totals(), (n, sum));
    }

    #[test]
    fn mean_and_max_follow_the_samples() {
        let h = Histogram::default();
        assert_eq!((h.mean_ms(), h.max_ms()), (None, None));
        for us in [1_000, 3_000, 8_000] {
            h.record_us(us);
        }
        let mean = h.mean_ms().unwrap();
        assert!((mean - 4.0).abs() / 4.0 < 0.07, "{mean}");
        let max = h.max_ms().unwrap();
        assert!((max - 8.0).abs() / 8.0 < 0.07, "{max}");
    }
}
