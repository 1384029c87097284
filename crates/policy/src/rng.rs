//! The random source every randomised decision takes as an argument.
//!
//! Algorithms never reach for a global RNG: they receive a
//! `&mut dyn RandomSource`, so tests pass a seeded generator and get the same
//! sequence every run (tower's `Balance::from_rng` does the same).

/// A source of uniformly distributed integers.
pub trait RandomSource {
    /// A uniformly random integer in `0..n`. `n` is never 0.
    fn below(&mut self, n: u64) -> u64;
}

impl RandomSource for fastrand::Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.u64(0..n)
    }
}

/// The per-thread generator used by the proxy: fast, not cryptographic.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRng;

impl RandomSource for ThreadRng {
    // The one place the thread RNG is read (clippy.toml fences it elsewhere).
    #[allow(clippy::disallowed_methods)]
    fn below(&mut self, n: u64) -> u64 {
        fastrand::u64(0..n)
    }
}
