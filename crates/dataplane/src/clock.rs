//! Time for the data plane: milliseconds since the gateway started, read
//! from tokio's clock so tests with paused time control it.

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
