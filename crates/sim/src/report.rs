//! What a run measured, and its Markdown rendering.
//!
//! Latencies are what a client observes: from sending the request to its
//! answer, including any wait in the gateway's admission queue and inside
//! the instance. Percentiles are computed over the successful requests only
//! (a 503 that took 0 ms would otherwise make the tail look better), by
//! nearest rank over a sorted `Vec` of every latency: exact, no dependency,
//! and a run's few hundred thousand samples sort in milliseconds — an HDR
//! histogram would only pay off for far longer runs.

use crate::instance::Inst;
use fulcrum_policy::{Algorithm, RequestClass};
use std::fmt::Write as _;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// The instance answered with an error (its `error_rate`).
    Error,
    /// The gateway answered 503: queue full, queue timeout, or all down.
    Rejected,
}

/// One instance's part of the traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReport {
    pub name: String,
    /// Requests sent to it.
    pub requests: u64,
    /// `requests` over all requests sent to some instance, 0..=1.
    pub share: f64,
    /// Most requests it ever had in flight at once (gateway-side count).
    pub max_in_flight: u32,
    /// Requests it answered with an error.
    pub errors: u64,
}

/// Client-observed latency of the successful requests, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// The percentiles of `latencies_us` (sorted here), by nearest rank.
    pub(crate) fn of(latencies_us: &mut [u64]) -> Self {
        latencies_us.sort_unstable();
        let v = &*latencies_us;
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1] as f64 / 1000.0
        };
        Latency {
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            p999: pct(0.999),
            max: pct(1.0),
            mean: if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0
            },
        }
    }
}

/// What one class got in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassReport {
    pub class: RequestClass,
    /// Requests answered successfully.
    pub served: u64,
    /// Requests the gateway refused (queue full, timed out, or shed).
    pub rejected: u64,
    /// Of `rejected`, those whose place in a full queue went to a higher
    /// class.
    pub shed: u64,
    /// Client-observed latency of the served requests.
    pub latency: Latency,
}

/// The gateway's admission queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueReport {
    /// Longest the queue ever was.
    pub max_len: usize,
    /// Requests that had to wait in it.
    pub waited: u64,
    /// Requests that waited until the queue timeout (answered 503).
    pub timed_out: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub algorithm: Algorithm,
    pub per_instance: Vec<InstanceReport>,
    /// Requests answered successfully.
    pub served: u64,
    /// Requests that failed: `rejected` plus the instances' errors.
    pub failed: u64,
    /// Of `failed`, those the gateway answered 503 itself.
    pub rejected: u64,
    pub latency: Latency,
    pub gateway_queue: QueueReport,
    /// Virtual time when the last request finished, milliseconds.
    pub elapsed_ms: f64,
    /// Key affinity: of the requests whose key had been sent before, the
    /// share that went to the same instance as that key's previous request
    /// (`None` without keys). ≈ 1/n for key-blind algorithms; 1.0 for a
    /// consistent hash whose keys never move.
    pub affinity: Option<f64>,
    /// With `dynamic_weights`, each instance's weight after every
    /// interval: (virtual time ms, weights). Empty without.
    pub weights: Vec<(u64, Vec<u32>)>,
    /// With `max_concurrent: auto`, each instance's learned limit whenever
    /// one changed: (virtual time ms, limits). Empty without.
    pub limits: Vec<(u64, Vec<u32>)>,
    /// With a [`crate::model::ClassMix`], what each request class got
    /// (in [`fulcrum_policy::RequestClass::ALL`] order). Empty without.
    pub classes: Vec<ClassReport>,
}

impl Report {
    /// Successful requests per second of virtual time.
    pub fn throughput(&self) -> f64 {
        if self.elapsed_ms > 0.0 {
            self.served as f64 * 1000.0 / self.elapsed_ms
        } else {
            0.0
        }
    }

    /// The report of the instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&InstanceReport> {
        self.per_instance.iter().find(|i| i.name == name)
    }
}

/// Accumulates outcomes during a run.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    latencies_us: Vec<u64>,
    failed: u64,
    rejected: u64,
    queue: QueueReport,
    /// Virtual time of the last outcome.
    last_us: u64,
    /// Per key: the instance its last request went to.
    key_last: Vec<Option<usize>>,
    /// Requests of an already-seen key, and those that stayed put.
    repeats: u64,
    stayed: u64,
}

impl Recorder {
    /// A request (with key index `key`, if any) was sent to instance `inst`.
    pub fn dispatched(&mut self, key: Option<usize>, inst: usize) {
        let Some(k) = key else { return };
        if k >= self.key_last.len() {
            self.key_last.resize(k + 1, None);
        }
        if let Some(prev) = self.key_last[k].replace(inst) {
            self.repeats += 1;
            self.stayed += u64::from(prev == inst);
        }
    }

    /// A request ended at `now_us` after `took_us`.
    pub fn record(&mut self, outcome: Outcome, took_us: u64, now_us: u64) {
        self.last_us = self.last_us.max(now_us);
        match outcome {
            Outcome::Ok => self.latencies_us.push(took_us),
            Outcome::Error => self.failed += 1,
            Outcome::Rejected => {
                self.failed += 1;
                self.rejected += 1;
            }
        }
    }

    /// A request joined the admission queue, which is now `len` long.
    pub fn queued(&mut self, len: usize) {
        self.queue.waited += 1;
        self.queue.max_len = self.queue.max_len.max(len);
    }

    pub fn timed_out(&mut self) {
        self.queue.timed_out += 1;
    }

    pub fn finish(mut self, algorithm: Algorithm, insts: &[Inst<'_>]) -> Report {
        let total: u64 = insts.iter().map(|s| s.calls).sum();
        let per_instance = insts
            .iter()
            .map(|s| InstanceReport {
                name: s.model.name.clone(),
                requests: s.calls,
                share: if total > 0 {
                    s.calls as f64 / total as f64
                } else {
                    0.0
                },
                max_in_flight: s.max_in_flight,
                errors: s.errors,
            })
            .collect();
        let latency = Latency::of(&mut self.latencies_us);
        Report {
            algorithm,
            per_instance,
            served: self.latencies_us.len() as u64,
            failed: self.failed,
            rejected: self.rejected,
            latency,
            gateway_queue: self.queue,
            elapsed_ms: self.last_us as f64 / 1000.0,
            affinity: (self.repeats > 0).then(|| self.stayed as f64 / self.repeats as f64),
            weights: vec![],
            limits: vec![],
            classes: vec![],
        }
    }
}

/// A Markdown table with one row per report (same instances in each).
pub fn markdown_table(reports: &[Report]) -> String {
    let names = reports.first().map_or(String::new(), |r| {
        let n: Vec<&str> = r.per_instance.iter().map(|i| i.name.as_str()).collect();
        n.join(" / ")
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| algorithm | served | failed | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms \
         | share % ({names}) | max in flight | gw queue: waited / timed out \
         | key affinity % |"
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|\n");
    for r in reports {
        let shares: Vec<String> = r
            .per_instance
            .iter()
            .map(|i| format!("{:.1}", i.share * 100.0))
            .collect();
        let peaks: Vec<String> = r
            .per_instance
            .iter()
            .map(|i| i.max_in_flight.to_string())
            .collect();
        let l = &r.latency;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} / {} | {} |",
            r.algorithm,
            r.served,
            r.failed,
            r.throughput(),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            shares.join(" / "),
            peaks.join(" / "),
            r.gateway_queue.waited,
            r.gateway_queue.timed_out,
            r.affinity
                .map_or_else(|| "–".to_string(), |a| format!("{:.1}", a * 100.0)),
        );
    }
    out
}

/// [`markdown_table`] with each row's first cell replaced by its label
/// (`labels[i]` for `reports[i]`): for tables whose rows differ by more
/// than the algorithm (dynamic weights on or off, say).
pub fn labelled_table(labels: &[String], reports: &[Report]) -> String {
    let table = markdown_table(reports);
    let mut out = String::new();
    let mut lines = table.lines();
    for l in lines.by_ref().take(2) {
        let _ = writeln!(out, "{l}");
    }
    for (l, label) in lines.zip(labels) {
        let rest = l
            .trim_start_matches("| ")
            .split_once(" | ")
            .map_or("", |x| x.1);
        let _ = writeln!(out, "| {label} | {rest}");
    }
    out
}
