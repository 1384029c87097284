//! The demo's narration on stdout.

use std::fmt::Display;
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// Lines stamped with the time since the demo started (`+MM:SS`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Say {
    /// When the demo started: the incidents' schedule counts from it too.
    pub t0: Instant,
}

impl Say {
    pub fn line(&self, what: impl Display) {
        out(format_args!("{} {what}", stamp(self.t0.elapsed())));
    }
}

/// One line on stdout. A stdout that went away is ignored: the demo still
/// stops on time, or on Ctrl-C, and cleans up.
pub(super) fn out(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `+MM:SS` (minutes keep counting past 59).
fn stamp(since_start: Duration) -> String {
    let s = since_start.as_secs();
    format!("+{:02}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_count_minutes_and_seconds_since_start() {
        assert_eq!(stamp(Duration::from_millis(5_900)), "+00:05");
        assert_eq!(stamp(Duration::from_secs(61)), "+01:01");
        assert_eq!(stamp(Duration::from_secs(3600)), "+60:00");
    }
}
