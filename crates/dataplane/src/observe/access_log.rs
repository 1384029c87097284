//! The access log: one line per finished request (nginx's `access_log`),
//! written by a thread of its own so that writing never slows a request.
//!
//! The request path formats its line ([`super::access_format`]) into a
//! reused per-thread buffer and appends it to a shared buffer of at most
//! `access_log.buffer` lines (a mutex held for one copy of the line, never
//! during I/O); when that buffer is full the line is dropped and counted
//! ([`AccessLog::dropped`]) instead of waiting. The writer thread wakes
//! every [`TICK`] (50 ms), or sooner once the shared buffer is half full,
//! swaps the shared buffer for an empty one and writes what it took with
//! one `write` (nginx's `buffer=`/`flush=`, without the configuration): a
//! stalled destination (a pipe nobody reads, a full disk) blocks only that
//! thread. The writer sleeps rather than being woken by each line: only the
//! line that fills half the buffer pays for a wake-up, once per batch.
//!
//! Why 50 ms: each `write` to a file costs the kernel a fixed part besides
//! the bytes (the inode's times, the journal), so fewer, larger writes cost
//! less system CPU per line (appending 260-byte lines to ext4 at 30,000
//! lines/s: about 0.25–0.35 µs per line in 10 ms batches, 0.11–0.2 in 25 or
//! 50 ms ones; docs/BENCHMARKS.md, "Observability").
//!
//! Formatting on the request path (~1,100 instructions) costs less than
//! handing the record to the writer: no copy of the record to queue and
//! drop on another thread, whose cache it would have to travel to
//! (docs/BENCHMARKS.md, "Observability").
//!
//! [`AccessLog::reopen`] (`SIGUSR1`) makes the writer open its file again
//! at the same path before its next write, for logrotate;
//! [`AccessLog::flush`] waits until what is buffered is written (shutdown).

use super::access_format;
use super::record::{Observer, Record};
use crate::clock::Clock;
use fulcrum_config::{AccessLogTarget, LogFormat};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the writer sleeps after each look at the buffer, unless the
/// buffer fills to half first: the most a line waits before it is written
/// (when the destination keeps up).
pub const TICK: Duration = Duration::from_millis(50);

/// Lines formatted and waiting for the writer.
#[derive(Debug, Default)]
struct Waiting {
    buf: Vec<u8>,
    lines: u64,
}

/// What the request path and the writer thread share.
#[derive(Debug, Default)]
struct Shared {
    waiting: Mutex<Waiting>,
    /// Wakes the writer before its tick: the buffer is half full, a flush
    /// is wanted, or the log is closed.
    wake: Condvar,
    dropped: AtomicU64,
    written: AtomicU64,
    reopen: AtomicBool,
    /// A flush is wanted; the writer counts `flushes` once everything
    /// buffered before it is written.
    flush: AtomicBool,
    flushes: AtomicU64,
    /// The log is gone: the writer writes what is left and ends.
    closed: AtomicBool,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the writer for a flag just set: taking the lock first means
    /// the writer either saw the flag or is already waiting.
    fn wake_writer(&self) {
        drop(self.waiting());
        self.wake.notify_one();
    }
}

thread_local! {
    // Each thread formats its lines here before the one copy into the
    // shared buffer (reused: no allocation per line).
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The access log's observer: formats each finished record's line and
/// leaves it for the writer.
#[derive(Debug)]
pub struct AccessLog {
    shared: Arc<Shared>,
    format: fn(&mut Vec<u8>, &Record, u64),
    clock: Clock,
    /// `access_log.buffer`: lines that may wait for the writer.
    cap: u64,
    /// Half of `cap` (at least 1): the line that brings the buffer to it
    /// wakes the writer.
    half: u64,
}

impl AccessLog {
    /// Opens the destination of `cfg` and starts its writer thread; `None`
    /// when the access log is `off`. The thread ends when the returned
    /// value is dropped, after writing what is buffered.
    pub fn start(cfg: &fulcrum_config::AccessLog, clock: Clock) -> io::Result<Option<Arc<Self>>> {
        let dest = match &cfg.target {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => Dest::Stdout(io::stdout()),
            AccessLogTarget::File(p) => Dest::File {
                file: open(p)?,
                path: p.clone(),
            },
        };
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            dest,
            shared: shared.clone(),
            spare: Vec::new(),
            half: u64::from(cfg.buffer / 2).max(1),
        };
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run())?;
        Ok(Some(Arc::new(Self {
            shared,
            format: match cfg.format {
                LogFormat::Text => access_format::text,
                LogFormat::Json => access_format::json,
            },
            clock,
            cap: u64::from(cfg.buffer.max(1)),
            half: u64::from(cfg.buffer / 2).max(1),
        })))
    }

    /// Lines dropped because the buffer was full (the destination did not
    /// keep up) or their write failed; `fulcrum_access_log_dropped_total`.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Relaxed)
    }

    /// Waits (at most `within`) until every line buffered before the call
    /// has been written or dropped: at shutdown, after the last request.
    pub async fn flush(&self, within: Duration) {
        let before = self.shared.flushes.load(Acquire);
        self.shared.flush.store(true, Release);
        self.shared.wake_writer();
        let deadline = tokio::time::Instant::now() + within;
        while self.shared.flushes.load(Acquire) == before && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Opens the file again at its path before the next write (`SIGUSR1`,
    /// after logrotate moved it). Nothing to do for stdout.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Relaxed);
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.shared.closed.store(true, Release);
        self.shared.wake_writer();
    }
}

impl Observer for AccessLog {
    fn request_done(&self, r: &Record) {
        // When the request ended, on the gateway's clock (no clock read).
        let end = self
            .clock
            .unix_ms_at(r.started + r.total.unwrap_or_default());
        LINE.with(|line| {
            let line = &mut *line.borrow_mut();
            line.clear();
            (self.format)(line, r, end);
            let mut w = self.shared.waiting();
            if w.lines >= self.cap {
                drop(w);
                self.shared.dropped.fetch_add(1, Relaxed);
                return;
            }
            w.buf.extend_from_slice(line);
            w.lines += 1;
            if w.lines == self.half {
                drop(w);
                self.shared.wake.notify_one();
            }
        });
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Where the lines go.
enum Dest {
    Stdout(io::Stdout),
    File { path: PathBuf, file: File },
}

impl Dest {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Dest::Stdout(s) => {
                let mut s = s.lock();
                s.write_all(buf)?;
                s.flush()
            }
            Dest::File { file, .. } => file.write_all(buf),
        }
    }

    fn reopen(&mut self) {
        if let Dest::File { path, file } = self {
            match open(path) {
                Ok(f) => {
                    *file = f;
                    tracing::info!(path = %path.display(), "access log reopened");
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log; writing to the old file")
                }
            }
        }
    }
}

/// The writer thread's state.
struct Writer {
    dest: Dest,
    shared: Arc<Shared>,
    /// The empty buffer swapped in for the full one.
    spare: Vec<u8>,
    /// [`AccessLog::half`]: lines that do not wait for the tick.
    half: u64,
}

impl Writer {
    fn run(mut self) {
        let mut failing = false;
        loop {
            let flush = self.shared.flush.load(Acquire);
            let closed = self.shared.closed.load(Acquire);
            let (mut buf, lines) = {
                let mut w = self.shared.waiting();
                let lines = std::mem::take(&mut w.lines);
                (
                    std::mem::replace(&mut w.buf, std::mem::take(&mut self.spare)),
                    lines,
                )
            };
            if self.shared.reopen.swap(false, Relaxed) {
                self.dest.reopen();
            }
            if lines > 0 {
                match self.dest.write_all(&buf) {
                    Ok(()) => {
                        self.shared.written.fetch_add(lines, Relaxed);
                        failing = false;
                    }
                    Err(e) => {
                        self.shared.dropped.fetch_add(lines, Relaxed);
                        if !failing {
                            tracing::error!(error = %e, "cannot write the access log; its lines are dropped (and counted) until it works again");
                        }
                        failing = true;
                    }
                }
            }
            buf.clear();
            self.spare = buf;
            if flush {
                // Everything buffered before the flush was asked is written.
                self.shared.flush.store(false, Relaxed);
                self.shared.flushes.fetch_add(1, Release);
            }
            if closed {
                return;
            }
            // Until the tick, unless woken sooner (a spurious wake-up only
            // makes a smaller batch).
            let w = self.shared.waiting();
            if w.lines < self.half
                && !self.shared.flush.load(Acquire)
                && !self.shared.closed.load(Acquire)
            {
                drop(self.shared.wake.wait_timeout(w, TICK));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Outcome, Pending};
    use http::{Method, Uri};

    fn settings(target: AccessLogTarget, buffer: u32) -> fulcrum_config::AccessLog {
        fulcrum_config::AccessLog {
            target,
            format: LogFormat::Text,
            buffer,
        }
    }

    fn request(log: &Arc<AccessLog>, path: &'static str) {
        let p = Pending::new(
            log.clone(),
            tokio::time::Instant::now(),
            Method::GET,
            Uri::from_static(path),
        );
        p.finish(Outcome::Complete);
    }

    fn wait_written(log: &AccessLog, n: u64) {
        for _ in 0..500 {
            if log.written() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{} of {n} lines written", log.written());
    }

    #[test]
    fn off_starts_nothing() {
        let off = settings(AccessLogTarget::Off, 8);
        assert!(AccessLog::start(&off, Clock::new()).unwrap().is_none());
    }

    #[test]
    fn lines_go_to_the_file_and_a_reopen_starts_a_new_one_at_the_path() {
        let dir = std::env::temp_dir().join(format!("fulcrum-al-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let _ = std::fs::remove_file(&path);
        let cfg = settings(AccessLogTarget::File(path.clone()), 64);
        let log = AccessLog::start(&cfg, Clock::new()).unwrap().unwrap();
        request(&log, "/a");
        request(&log, "/b");
        wait_written(&log, 2);
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        request(&log, "/c");
        wait_written(&log, 3);
        log.reopen();
        request(&log, "/d");
        wait_written(&log, 4);
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(old.lines().count(), 3, "{old}");
        assert!(old.contains("\"GET /c HTTP/1.1\""), "{old}");
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.contains("\"GET /d HTTP/1.1\""), "{new}");
        assert_eq!(log.dropped(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_flush_returns_once_every_queued_line_is_written() {
        let cfg = settings(AccessLogTarget::File("/dev/null".into()), 64);
        let log = AccessLog::start(&cfg, Clock::new()).unwrap().unwrap();
        for _ in 0..5 {
            request(&log, "/x");
        }
        log.flush(Duration::from_secs(5)).await;
        assert_eq!(log.written(), 5);
        request(&log, "/y");
        log.flush(Duration::from_secs(5)).await;
        assert_eq!(
            log.written(),
            6,
            "a second flush waits for the new line too"
        );
    }

    #[test]
    fn an_unopenable_file_is_an_error_at_start() {
        let cfg = settings(
            AccessLogTarget::File("/nonexistent-dir/x/access.log".into()),
            8,
        );
        assert!(AccessLog::start(&cfg, Clock::new()).is_err());
    }
}
