//! A writer SIGKILLed mid-write loses nothing it reported as committed.
//!
//! The test binary runs itself (`current_exe()`) as the writer: with
//! `FULCRUM_STORE_WRITER_DIR` set, the `writer` test below writes entries in
//! a loop and prints `COMMITTED <key>` after each `put` returns. The parent
//! reads those lines, `kill()`s the child (SIGKILL) while it is in the middle
//! of its next write, and then checks that the store opens and holds every
//! reported entry intact. It does this for several rounds on the same file,
//! so later rounds also recover from the damage of earlier kills.

// A child process is timed on the wall clock; the clippy.toml fence on
// `std::time::Instant` is for the crates' own code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use fulcrum_store::{Store, Table};

const DIR_VAR: &str = "FULCRUM_STORE_WRITER_DIR";
const ROUND_VAR: &str = "FULCRUM_STORE_WRITER_ROUND";
/// Key overwritten on every iteration with the iteration number.
const LAST: &str = "last";

/// The value stored under a key: derived from the key, sizes 1 B to ~12 KiB
/// so writes span pages and grow the file.
fn value_for(key: &str) -> Vec<u8> {
    let n = key
        .bytes()
        .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    let len = 1 + n % 12_000;
    let seed = key.as_bytes();
    (0..len).map(|i| seed[i % seed.len()] ^ (i as u8)).collect()
}

/// The key and iteration in a `COMMITTED <key> <i>` line. libtest may have
/// printed `test writer ... ` on the same line before the first one.
fn committed(line: &str) -> Option<&str> {
    line.find("COMMITTED ")
        .map(|at| &line[at + "COMMITTED ".len()..])
}

/// Notes the key of a `COMMITTED` line. Iterations are reported in order
/// from 0, so a lost or garbled line fails here rather than weakening the
/// checks after the kill.
fn record(line: &str, round: u32, next_i: &mut u32, reported: &mut Vec<String>) {
    if let Some(rest) = committed(line) {
        let (key, i) = rest.split_once(' ').unwrap();
        assert_eq!(
            i.parse::<u32>().ok(),
            Some(*next_i),
            "round {round}: {line:?}"
        );
        *next_i += 1;
        reported.push(key.to_string());
    }
}

/// The child half. Without the env var (a normal `cargo test` run) it does
/// nothing.
#[test]
fn writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let round = std::env::var(ROUND_VAR).unwrap();
    let store = Store::open(Path::new(&dir)).expect("writer: open");
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Bounded, in case the parent is gone: it stops by itself.
    for i in 0..100_000u32 {
        if Instant::now() > deadline {
            break;
        }
        let key = format!("http://r{round}-{i:06}.invalid:8000");
        store
            .put(Table::Registrations, &key, &value_for(&key))
            .expect("writer: put");
        store
            .put(Table::Overrides, LAST, format!("{round}:{i}").as_bytes())
            .expect("writer: put last");
        writeln!(out, "COMMITTED {key} {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_mid_write_loses_no_committed_entry() {
    let dir = TempDir::new("kill9");
    let exe = std::env::current_exe().unwrap();
    let mut reported: Vec<String> = Vec::new();
    // Keys found in the store after earlier rounds.
    let mut earlier = std::collections::BTreeSet::new();

    for (round, kill_after) in [(0u32, 40usize), (1, 25), (2, 60), (3, 10)] {
        let mut child = Command::new(&exe)
            .args(["--exact", "writer", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .env(ROUND_VAR, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next_i = 0u32;
        while (next_i as usize) < kill_after {
            let line = match lines.next() {
                Some(line) => line.unwrap(),
                None => {
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "round {round}: writer exited after {next_i} entries: {}\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            };
            record(&line, round, &mut next_i, &mut reported);
        }
        // SIGKILL: the child is in the middle of its next put.
        child.kill().unwrap();
        // Lines it printed before dying were committed too.
        for line in lines {
            record(&line.unwrap(), round, &mut next_i, &mut reported);
        }
        let last_i = next_i.checked_sub(1);
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: writer was not killed");

        let store = Store::open(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: open after kill -9: {e}"));
        let regs: std::collections::BTreeMap<String, Vec<u8>> = store
            .load(Table::Registrations)
            .unwrap()
            .into_iter()
            .collect();
        for key in &reported {
            let value = regs
                .get(key)
                .unwrap_or_else(|| panic!("round {round}: committed {key} is missing"));
            assert!(*value == value_for(key), "round {round}: {key} damaged");
        }
        // Anything beyond what was reported (now or in earlier rounds) is at
        // most this round's put in flight, and it is whole too.
        let unreported: Vec<&String> = regs
            .keys()
            .filter(|k| !reported.contains(*k) && !earlier.contains(*k))
            .collect();
        assert!(unreported.len() <= 1, "round {round}: {unreported:?}");
        for (key, value) in &regs {
            assert!(*value == value_for(key), "round {round}: {key} damaged");
        }
        earlier.extend(regs.keys().cloned());
        // The overwritten key holds the last reported iteration or the one
        // after it: never torn, never older.
        let overrides = store.load(Table::Overrides).unwrap();
        assert_eq!(overrides.len(), 1, "round {round}");
        let last = String::from_utf8(overrides[0].1.clone()).unwrap();
        let (r, i) = last.split_once(':').unwrap();
        assert_eq!(r.parse::<u32>().unwrap(), round);
        let i: u32 = i.parse().unwrap();
        let reported_i = last_i.unwrap();
        assert!(
            i == reported_i || i == reported_i + 1,
            "round {round}: last = {i}, reported {reported_i}"
        );
        // Close before the next writer opens it.
        drop(store);
    }
    assert!(reported.len() >= 135);
}
