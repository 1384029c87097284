//! Time and randomness for the data plane, injected: [`Clock`] reads
//! milliseconds since the gateway started from tokio's clock (so tests with
//! paused time control it), and [`Rng`] is the random source of balancing
//! decisions (the fast per-thread generator, or a seeded one in tests).
//! This is the one module allowed to read the system's clocks and the
//! thread RNG (see `clippy.toml`).

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    /// Wall time at `start`, ms since the Unix epoch: wall time is this
    /// plus tokio's elapsed time, so paused time moves it too.
    start_unix_ms: u64,
}

impl Clock {
    #[allow(clippy::disallowed_methods)] // The one place the wall clock is read.
    pub fn new() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            start: Instant::now(),
            start_unix_ms: unix,
        }
    }

    /// Seconds since the Unix epoch, on this clock.
    pub fn unix_secs(&self) -> u64 {
        (self.start_unix_ms + self.now_ms()) / 1000
    }

    /// Milliseconds since the Unix epoch, on this clock.
    pub fn unix_ms(&self) -> u64 {
        self.start_unix_ms + self.now_ms()
    }

    /// Milliseconds since the Unix epoch at `at` (an instant of this
    /// clock), by arithmetic alone: no clock is read.
    pub fn unix_ms_at(&self, at: Instant) -> u64 {
        self.start_unix_ms + at.saturating_duration_since(self.start).as_millis() as u64
    }

    /// The current instant on tokio's clock (paused in tests).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// Milliseconds since this clock was created.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The random source of balancing decisions.
#[derive(Debug, Default)]
pub enum Rng {
    /// The per-thread generator: fast, not cryptographic, never contended.
    #[default]
    Thread,
    /// One seeded generator: the same picks on every run (tests).
    Seeded(std::sync::Mutex<fastrand::Rng>),
}

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Rng::Seeded(std::sync::Mutex::new(fastrand::Rng::with_seed(seed)))
    }

    /// A uniformly random float in `0..1` (jitter), from this source.
    pub fn f64(&self) -> f64 {
        const SCALE: u64 = 1 << 53;
        self.with(|r| r.below(SCALE) as f64 / SCALE as f64)
    }

    /// A random 128-bit value (request ids), from this source.
    pub fn u128(&self) -> u128 {
        self.with(|r| (u128::from(r.below(u64::MAX)) << 64) | u128::from(r.below(u64::MAX)))
    }

    /// Runs `f` with this source.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn fulcrum_policy::RandomSource) -> T) -> T {
        match self {
            Rng::Thread => f(&mut fulcrum_policy::rng::ThreadRng),
            Rng::Seeded(m) => f(&mut *m.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}
