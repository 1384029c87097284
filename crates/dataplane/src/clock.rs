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
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
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

    /// Runs `f` with this source.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn fulcrum_policy::RandomSource) -> T) -> T {
        match self {
            Rng::Thread => f(&mut fulcrum_policy::rng::ThreadRng),
            Rng::Seeded(m) => f(&mut *m.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}
