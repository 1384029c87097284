//! Exact running moments of a duration: the count, sum and sum of squares
//! of its samples in microseconds, three relaxed atomic adds per sample.
//!
//! What a learned limit is judged on. A [`Histogram`](super::histogram)
//! reports each sample at its bucket's lower bound (buckets 6.25 % wide):
//! requests of one size all fall into one bucket or, when their time
//! sits at a boundary, into two, so a tick's mean jumped by up to 6.25 %
//! with no change in the instance — against a 10 % tolerance, half of it
//! (the capacity suite's LLM mocks answer in about 242 ms; their tick
//! means read 229 or 246–270 ms). Exact sums have no such steps.
//!
//! The sums wrap on overflow; the difference of two readings
//! ([`MomentsReading::since`]) is exact as long as the samples between
//! them sum to less than 2⁶⁴ µs² (a hundred thousand answers of 10 s). A
//! sample counts in the sum of squares as at most 2²⁸ µs (4.5 min), so
//! 255 of the longest fit between two readings (the spread of answers
//! longer than that is underestimated).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The largest sample in the sum of squares, µs.
const MAX_SQ_US: u64 = 1 << 28;

/// Count, sum and sum of squares of durations, since start.
#[derive(Debug, Default)]
pub struct Moments {
    count: AtomicU64,
    sum_us: AtomicU64,
    sum_sq_us2: AtomicU64,
}

/// One reading of a [`Moments`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MomentsReading {
    pub count: u64,
    /// Σ samples, µs (wrapping).
    pub sum_us: u64,
    /// Σ samples², µs² (wrapping).
    pub sum_sq_us2: u64,
}

impl Moments {
    pub fn record_us(&self, us: u64) {
        let sq = us.min(MAX_SQ_US);
        self.count.fetch_add(1, Relaxed);
        // fetch_add wraps on overflow; differences stay exact.
        self.sum_us.fetch_add(us, Relaxed);
        self.sum_sq_us2.fetch_add(sq * sq, Relaxed);
    }

    /// The totals now (three loads: a sample recorded meanwhile may be in
    /// one and not yet in another, and is then in the next reading).
    pub fn read(&self) -> MomentsReading {
        MomentsReading {
            count: self.count.load(Relaxed),
            sum_us: self.sum_us.load(Relaxed),
            sum_sq_us2: self.sum_sq_us2.load(Relaxed),
        }
    }
}

impl MomentsReading {
    /// The samples since `earlier`: their count, sum (ms) and sum of
    /// squares (ms²).
    pub fn since(&self, earlier: &MomentsReading) -> (u64, f64, f64) {
        (
            self.count.wrapping_sub(earlier.count),
            self.sum_us.wrapping_sub(earlier.sum_us) as f64 / 1e3,
            self.sum_sq_us2.wrapping_sub(earlier.sum_sq_us2) as f64 / 1e6,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sums_are_exact_where_a_histogram_steps() {
        // 241 and 247 ms are in two buckets of the histogram (reported
        // 229 and 246 ms): here they are what they are.
        let m = Moments::default();
        let start = m.read();
        for ms in [241u64, 241, 247, 247] {
            m.record_us(ms * 1000);
        }
        let (n, sum, sq) = m.read().since(&start);
        assert_eq!(n, 4);
        assert_eq!(sum, 976.0);
        assert_eq!(sq, 2.0 * 241.0 * 241.0 + 2.0 * 247.0 * 247.0);
    }

    #[test]
    fn differences_survive_the_sums_wrapping() {
        let m = Moments {
            count: AtomicU64::new(u64::MAX),
            sum_us: AtomicU64::new(u64::MAX - 5),
            sum_sq_us2: AtomicU64::new(u64::MAX - 5),
        };
        let before = m.read();
        m.record_us(10);
        m.record_us(MAX_SQ_US + 1000);
        let (n, sum, sq) = m.read().since(&before);
        assert_eq!(n, 2);
        assert_eq!(sum, (10 + MAX_SQ_US + 1000) as f64 / 1e3);
        assert_eq!(sq, (100 + MAX_SQ_US * MAX_SQ_US) as f64 / 1e6);
    }
}
