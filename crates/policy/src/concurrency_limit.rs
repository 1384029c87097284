//! Learned concurrency limits (`max_concurrent: auto`): how many requests
//! an instance may hold at once, learned from its latency, so requests
//! beyond what it can work on in parallel wait in the gateway's admission
//! queue — and go to whichever instance frees first — instead of in one
//! GPU's own queue.
//!
//! Pure: the caller measures each instance over a tick ([`Sample`]), keeps
//! its [`Memory`] between calls, and publishes the limit [`next`] returns.
//!
//! **The signal.** An instance that works on `C` requests at a time and is
//! given `L > C` holds `L − C` of them in its own queue, so by Little's law
//! its mean latency rises to `L / C` times the latency it has without a
//! queue (its *baseline*). The ratio `r = latency / baseline` therefore
//! says how far over its parallelism an instance is, and `L / r` estimates
//! that parallelism: the gradient idea of Netflix's concurrency-limits
//! (`Gradient2Limit`: `limit × rtt_noload / rtt`) and of Envoy's adaptive
//! concurrency filter (`limit × minRTT / sampleRTT`). Both add a headroom
//! term (`√limit`) that keeps a queue of a few requests at the instance;
//! for the small limits of inference servers (a GPU batch of 4) that
//! headroom is as large as the limit, so here there is none: from
//! [`QUEUE_AT`] up the limit drops to `L / r` (at least one lower), below
//! it the limit probes one higher (Vegas-style additive increase). A
//! period (one tick or more, see below) lowers it by at most a third
//! ([`MAX_FALL`]), so one slow tick cannot halve it (Gradient2 smooths its estimate for the same reason),
//! and after any fall nothing is judged until as many answers as the old
//! limit are in: those admitted under it may have waited in the
//! instance's queue. There
//! is deliberately no band above the parallelism in which it holds: a
//! limit held a little above it would make the queued latency the new
//! baseline and creep up; probing and falling back keeps visiting `C`,
//! where latency is the baseline. But after a fall that clearly removed a
//! queue (latency [`CHECKED_FALL`] times lower), the limit that queued is
//! tried again only [`HOLD`] periods later, so an instance of parallelism
//! `C` is held at `C`, at `C + 1` one period in six or seven (for large
//! `C`, within a tenth of it: one request more is then inside the noise
//! of a tick's mean, and it probes every other period).
//!
//! **Latency** here is the whole time a request holds its slot, to the
//! last byte of its answer, not the time to its response head: a stream
//! (an LLM's SSE answer) queued at the instance behind another has its
//! head late by a whole stream, so head latency would make one request
//! over capacity look like a ratio of several and cut the limit in half.
//!
//! **The baseline** is the lowest period mean (see below) of the last
//! [`BASELINE_TICKS`] periods: means rather than single requests (the fastest request
//! of many is far below what a request usually takes), and a rolling
//! window rather than an all-time minimum, so an instance that became
//! slower for good (a bigger model) gets a new baseline instead of being
//! held at its minimum forever (Envoy re-measures its minRTT for the same
//! reason).
//!
//! **Growth** happens only when the limit was in the way during the period
//! (requests waited in the admission queue, or on average at least half
//! the limit was in use): an idle instance's limit says nothing about its
//! capacity and must not drift up. From a cold start the limit doubles
//! while latency stays near the baseline (slow start, as in TCP), until
//! the first time it is over the tolerance; then it moves by one.
//!
//! **Variable work.** When requests differ in size (an LLM's answers of 5
//! or 50 tokens), one tick's mean latency is itself noisy: with 17
//! answers of a spread of two thirds of their mean it wanders ±16 % (one
//! standard error), and the lowest of 30 such means is a third under the
//! true one, so every later tick looked like a queue and the limit fell to
//! 1 (the simulator's four instances of 4 slots with log-normal service
//! times: 64 req/s against 168 for `max_concurrent: 4`). So:
//!
//! * the controller judges a **period**, not a tick: ticks are gathered
//!   (count, sum and sum of squares of the held times) until the mean's
//!   standard error is within [`PRECISION`] of it (in slow start
//!   [`SLOW_START_PRECISION`]), or for at most [`LONGEST_PERIOD`] ticks.
//!   Uniform work (the mocks, a fixed-size model) has a tiny spread: one
//!   tick is a period, as before;
//! * a period is a queue when its mean is [`QUEUE_AT`] times the baseline
//!   or more even one standard error lower (two for a rough period); any
//!   other period may grow the limit (slow start doubles only on a mean
//!   under [`QUEUE_AT`], so the half it falls back to was seen fine);
//! * a period's entry in the baseline window is its mean plus
//!   [`BASELINE_MARGIN`] standard errors, so the lowest entry is not
//!   simply the luckiest draw;
//! * when slow start ends (a queue or an error tick; a mean over the
//!   tolerance but inside the noise grows the limit by one only), its
//!   rough periods (a few answers at
//!   limits 1 and 2, errors of 15 %) leave the window; on a queue the
//!   limit goes back to what the ratio says, but no higher than the last
//!   limit slow start saw no queue at (TCP's ssthresh) and no lower than
//!   a quarter (and, as after every fall, nothing is judged until the
//!   answers admitted under the old limit are in);
//! * when no period of the last [`PROBE_AFTER`] came within
//!   [`PRECISION`] of the baseline, one period is spent one lower, to
//!   measure it afresh. Without it an
//!   unlucky first measurement at the capacity (a mean high by two
//!   standard errors) made a baseline so high that one request over the
//!   capacity no longer showed, and the limit cycled one and two over it.
//!   Uniform work never needs it: its limit visits the capacity every
//!   other period. (The probe's period also holds answers admitted one
//!   higher; with ticks much longer than a request they are a small part
//!   of it.)
//!
//! **A fall that did not help.** A rise in latency is a queue only if a
//! lower limit removes it. So the first judged period after a fall (a
//! queue, a probe)
//! of at least [`CHECKED_FALL`] (4 to 3, 5 to 4, 8 to 4; smaller falls in
//! a row are checked together) is compared with the period that caused
//! it: when its mean is not [`FALL_HELPED`] lower, and not even near
//! what a removed queue would give (`to / from` of the first, by three
//! standard errors), the limit goes back to where it was. After a fall
//! on a queue that means the instance had become slower without a queue
//! (a throttled GPU, a host busy with other work, a bigger model) and the
//! old baseline was out of date: both periods measured the new speed
//! without a queue, so they become the baseline. (A probe from the
//! capacity finds the same latency one lower, which is no news: only
//! the limit goes back.) Without this check the limit fell period after
//! period (12 % slower at 4 slots: from 4 to 1) until the old baseline
//! left the window, 30 periods later. A real queue is unaffected: one
//! request over 4 slots is 25 % slower than one lower. Should two
//! unlucky means still reset the baseline to latency over the capacity
//! (no period would then look over the tolerance), the periodic probe
//! ([`PROBE_EVERY`]) measures one lower again within a few windows.
//!
//! **Exact times.** The control task sums the held times exactly
//! (`Moments` in the data plane), not from a latency histogram: with
//! buckets 6 % wide, requests of one size at a bucket's edge made a
//! tick's mean jump by 6 %, and at the capacity suite's knee the stale
//! rule probed one lower every dozen periods.
//!
//! **Errors**: a tick in which at least [`ERROR_SHARE`] of the answers
//! were errors (an overloaded server's 503s, time-outs) lowers the limit by
//! a fifth — fast failures would otherwise look like low latency.
//!
//! The limit is always within the configured bounds.

/// `max_concurrent: auto`'s bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The smallest limit (≥ 1), and the first one.
    pub min: u32,
    /// The largest limit.
    pub max: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { min: 1, max: 256 }
    }
}

impl Bounds {
    fn clamp(&self, l: u32) -> u32 {
        l.clamp(self.min.max(1), self.max.max(self.min.max(1)))
    }
}

/// Latency from this many times the baseline on is a queue at the
/// instance: the limit falls to what the ratio says the instance serves at
/// once. Below it (the noise of tick means) the limit may grow.
pub const QUEUE_AT: f64 = 1.1;
/// A tick lowers the limit by at most `1 / MAX_FALL` of it (at least by
/// one): one slow tick (a long generation, a pause) cannot halve a limit,
/// while a real rise in latency still brings it down within a few ticks.
pub const MAX_FALL: u32 = 3;
/// Periods whose lowest entry (mean plus [`BASELINE_MARGIN`] standard
/// errors) is the baseline.
pub const BASELINE_TICKS: usize = 30;
/// A tick with fewer answers than this says nothing (the limit holds, and
/// the tick is not added to the period: the control task ends a tick this
/// short only after 30 s).
pub const MIN_ANSWERS: u64 = 4;
/// Error share of a tick's answers that lowers the limit.
pub const ERROR_SHARE: f64 = 0.1;
/// A period is judged once its mean latency's standard error is at most
/// this share of the mean (5 %: a queue of one over 4 slots is +25 %).
pub const PRECISION: f64 = 0.05;
/// In slow start a period needs less: a doubling past the capacity at
/// least doubles the latency.
pub const SLOW_START_PRECISION: f64 = 0.15;
/// A period's entry in the baseline is its mean plus this many standard
/// errors: the lowest of a few noisy means is a lucky draw, under the
/// instance's no-queue mean (by two standard errors for the lowest of 30).
pub const BASELINE_MARGIN: f64 = 1.0;
/// When no period of the last this many came within [`PRECISION`] of the
/// baseline (the limit has not been where latency is the baseline), one
/// period is spent one lower, to measure it afresh (Envoy re-measures its minRTT
/// at a low concurrency for the same reason): with noisy means, an unlucky
/// first measurement at the capacity made a baseline so high that one
/// request over it no longer showed, and the limit cycled one and two
/// over the capacity.
pub const PROBE_AFTER: u64 = 10;
/// Whatever the baseline says, one period in this many is spent one
/// lower, so a baseline that came to hold latency over the capacity (a
/// fall judged not to help on two unlucky means, see [`FALL_HELPED`]) is
/// measured again within a few windows; Envoy's adaptive concurrency
/// filter re-measures its minimum RTT periodically for the same reason.
/// At the capacity it costs one slot for a period or two (the answers
/// admitted one higher are waited for first). Once every 30 periods, that
/// was 1.7 % of a fully used stage of four instances of 4, which at the
/// capacity suite's knee (99 % used) is a backlog the turn p95 feels;
/// once every 120 it is a quarter of that.
pub const PROBE_EVERY: u64 = 4 * BASELINE_TICKS as u64;
/// A limit whose queue a fall clearly removed (latency [`CHECKED_FALL`]
/// times lower after it) is tried again only this many periods after: the
/// limit is held under it meanwhile. Probing one higher every other
/// period held an instance of 4 slots at 5 half of the time, with a
/// request waiting in the instance's own queue instead of the gateway's.
/// (An instance that became faster is found a few periods later.)
pub const HOLD: u64 = 5;
/// A period is judged after this many ticks even when less precise.
pub const LONGEST_PERIOD: u32 = 10;
/// A fall of the limit that lowered the mean latency by less than this
/// factor (half the tolerance: 5 %) did not remove a queue: the rise that
/// caused it was the instance becoming slower (a throttled GPU, a busy
/// host), not a queue, and the baseline is measured again at once.
pub const FALL_HELPED: f64 = 1.0 + (QUEUE_AT - 1.0) / 2.0;
/// Only a fall by this factor or more is checked ([`FALL_HELPED`]): had it
/// removed a queue, latency would have fallen by a sixth, well apart from
/// "not 5 % lower" even with a tick's noise of a few per cent. A fall by
/// one from a large limit (21 to 20: 5 %) says nothing either way; falls
/// in a row are checked together, from where the first began (20, 18,
/// 16: checked at 16 against the period at 20).
pub const CHECKED_FALL: f64 = 1.2;

/// What one instance did during one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Tries that ended during the tick.
    pub tries: u64,
    /// Of those, the ones that failed (5xx, time-outs, refused).
    pub errors: u64,
    /// Tries that gave their slot back during the tick.
    pub answered: u64,
    /// The mean time they held it (pick to the end of the response), ms.
    pub latency_ms: f64,
    /// The standard deviation of those times, ms (0 when unknown).
    pub latency_sd_ms: f64,
    /// Mean requests in flight (Little's law: answers per ms × latency).
    pub in_flight: f64,
    /// Whether requests of the instance's pool waited in the admission
    /// queue during the tick (the limit was in the way).
    pub queued: bool,
}

/// One instance's controller state between ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// The limit now.
    pub limit: u32,
    /// Still doubling (no queue and no error tick yet).
    pub slow_start: bool,
    /// The last limit at which slow start saw no queue (where it falls
    /// back to when it ends).
    fine: u32,
    /// The latest periods, oldest first (at most [`BASELINE_TICKS`]).
    means: std::collections::VecDeque<Judged>,
    /// The period being gathered.
    period: Period,
    /// Answers still to come that were admitted before the last fall,
    /// under the higher limit: ticks are not judged until they are in
    /// (they may have waited in the instance's queue).
    drain: u64,
    /// Periods judged so far.
    periods: u64,
    /// The period of the last probe one lower ([`PROBE_AFTER`]).
    probed_at: u64,
    /// The last period whose entry was within [`PRECISION`] of the
    /// baseline (the limit was where latency is the baseline).
    fresh_at: u64,
    /// The last fall of the limit (a queue or a probe), until the next
    /// judged period says whether it lowered latency ([`FALL_HELPED`]).
    fall: Option<Fall>,
    /// The last limit whose queue a fall clearly removed, and the period
    /// that showed it ([`HOLD`]).
    ceiling: Option<(u32, u64)>,
}

/// A fall of the limit, to be checked by the next judged period.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fall {
    /// The limit before it.
    from: u32,
    /// The limit after it.
    to: u32,
    /// Whether it was a fall on a queue (the period at `from` over the
    /// tolerance), not a probe.
    queue: bool,
    /// The mean latency of the period at `from` and its standard error, ms.
    mean_ms: f64,
    se_ms: f64,
    /// That period's baseline entry.
    judged: Judged,
}

/// A judged period, as the baseline keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Judged {
    /// The mean plus [`BASELINE_MARGIN`] standard errors.
    entry_ms: f64,
    /// Known within [`PRECISION`].
    precise: bool,
}

/// The sample standard deviation of `n` values from their sum and the sum
/// of their squares (0 for fewer than two): how the control task, the
/// simulator and a period turn their counters into a spread.
pub fn standard_deviation(n: u64, sum: f64, sum_sq: f64) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    let mean = sum / n;
    ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0).sqrt()
}

/// Ticks gathered until they are enough to judge.
#[derive(Debug, Clone, Default, PartialEq)]
struct Period {
    ticks: u32,
    answered: u64,
    sum_ms: f64,
    sum_sq_ms2: f64,
    /// Sum of the ticks' mean requests in flight.
    in_flight: f64,
    queued: bool,
}

impl Period {
    fn add(&mut self, s: &Sample) {
        let n = s.answered as f64;
        let sd = if s.latency_sd_ms.is_finite() {
            s.latency_sd_ms.max(0.0)
        } else {
            0.0
        };
        self.ticks += 1;
        self.answered += s.answered;
        self.sum_ms += n * s.latency_ms;
        // Σx² = (n − 1)·sd² + n·mean²
        self.sum_sq_ms2 += (n - 1.0).max(0.0) * sd * sd + n * s.latency_ms * s.latency_ms;
        self.in_flight += if s.in_flight.is_finite() {
            s.in_flight
        } else {
            0.0
        };
        self.queued |= s.queued;
    }

    fn mean_ms(&self) -> f64 {
        self.sum_ms / self.answered.max(1) as f64
    }

    /// The standard error of the mean, ms.
    fn standard_error_ms(&self) -> f64 {
        standard_deviation(self.answered, self.sum_ms, self.sum_sq_ms2)
            / (self.answered.max(1) as f64).sqrt()
    }
}

impl Memory {
    /// A new instance starts at the lowest limit, in slow start.
    pub fn new(b: &Bounds) -> Self {
        Self {
            limit: b.clamp(b.min),
            slow_start: true,
            fine: b.clamp(b.min),
            means: Default::default(),
            period: Period::default(),
            drain: 0,
            periods: 0,
            probed_at: 0,
            fresh_at: 0,
            fall: None,
            ceiling: None,
        }
    }

    /// The lowest recent period mean plus [`BASELINE_MARGIN`] standard
    /// errors (ms), once there is one.
    pub fn baseline_ms(&self) -> Option<f64> {
        self.means.iter().map(|j| j.entry_ms).reduce(f64::min)
    }
}

impl Memory {
    /// New bounds (a reload): the limit is kept within them, and what was
    /// pending under the old ones (the period being gathered, a fall to
    /// check, answers to wait for) is dropped.
    pub fn set_bounds(&mut self, b: &Bounds) {
        self.limit = b.clamp(self.limit);
        self.period = Period::default();
        self.fall = None;
        self.drain = 0;
        self.ceiling = None;
    }
}

/// Slow start is over (a queue, an error tick): its rough periods (a few
/// answers at limits 1 and 2, errors of 15 %) leave the baseline, and no
/// probe is due for a while.
fn end_slow_start(m: &mut Memory) {
    if m.slow_start {
        m.slow_start = false;
        m.means.retain(|j| j.precise);
        m.fresh_at = m.periods;
    }
}

/// The limit after a tick, given the tick's sample; updates `m`.
pub fn next(b: &Bounds, s: &Sample, m: &mut Memory) -> u32 {
    m.limit = b.clamp(m.limit);
    let tries = s.tries.max(s.answered);
    if tries >= MIN_ANSWERS && s.errors as f64 >= ERROR_SHARE * tries as f64 {
        end_slow_start(m);
        m.period = Period::default();
        m.fall = None;
        m.limit = b.clamp(m.limit - m.limit / 5);
        return m.limit;
    }
    if m.drain > 0 {
        m.drain = m.drain.saturating_sub(s.answered);
        return m.limit;
    }
    if s.answered < MIN_ANSWERS || !s.latency_ms.is_finite() || s.latency_ms <= 0.0 {
        return m.limit;
    }
    m.period.add(s);
    let p = &m.period;
    let mean = p.mean_ms();
    let se = p.standard_error_ms();
    let precision = if m.slow_start {
        SLOW_START_PRECISION
    } else {
        PRECISION
    };
    if se > precision * mean && p.ticks < LONGEST_PERIOD {
        return m.limit;
    }
    let p = std::mem::take(&mut m.period);
    if m.means.len() == BASELINE_TICKS {
        m.means.pop_front();
    }
    let precise = se <= PRECISION * mean;
    m.periods += 1;
    let entry_ms = mean + BASELINE_MARGIN * se;
    let judged = Judged { entry_ms, precise };
    m.means.push_back(judged);
    // A fall too small to judge, which the next fall (if this period
    // brings one) extends: judged from where the first began.
    let mut chain = None;
    if let Some(f) = m.fall.take() {
        // Had the fall removed a queue, latency would have fallen by
        // `to / from` at least: a mean that is also not FALL_HELPED lower
        // and over that by three standard errors of the difference rules
        // a queue out (a noisy mean is not enough: a wrong reset would
        // put latency over the capacity into the baseline).
        let queue_would_give = f.mean_ms * f64::from(f.to) / f64::from(f.from);
        let doubt = 3.0 * (f.se_ms * f.se_ms + se * se).sqrt();
        let checked = f64::from(f.from) >= CHECKED_FALL * f64::from(f.to);
        if checked && f.mean_ms < FALL_HELPED * mean && mean > queue_would_give + doubt {
            // The fall did not lower latency, so there was no queue to
            // remove, and the limit goes back. After a fall on a queue
            // that means the instance became slower (a throttled GPU, a
            // busy host) and the baseline is out of date: both periods
            // measured it without a queue, they are the baseline now. (A
            // probe at the capacity finds the same; its period is in the
            // window already, which is kept.)
            if f.queue {
                m.means.clear();
                m.means.extend([f.judged, judged]);
            }
            m.fresh_at = m.periods;
            m.ceiling = None;
            m.limit = b.clamp(f.from);
            return m.limit;
        }
        if !checked {
            chain = Some(f);
        } else if f.queue && f.mean_ms >= CHECKED_FALL * mean {
            // Clearly a queue, clearly removed: the limit it fell from is
            // not tried again for a while.
            m.ceiling = Some((f.from, m.periods));
        }
    }
    let base = m.baseline_ms().unwrap_or(mean);
    if entry_ms <= base * (1.0 + PRECISION) {
        m.fresh_at = m.periods;
    }
    let r = mean / base;
    let used = p.queued || p.in_flight / p.ticks as f64 * 2.0 >= m.limit as f64;
    // A queue: the mean is over the tolerance even one standard error
    // lower, two for a rougher period (cut short at LONGEST_PERIOD ticks,
    // or slow start's). Uniform work has none: the mean itself.
    let doubt = if precise { 1.0 } else { 2.0 };
    let before = m.limit;
    let queue = (mean - doubt * se) / base >= QUEUE_AT;
    m.limit = if queue && m.slow_start {
        // Slow start ends where the latency first rose: back to what the
        // ratio says the instance serves at once, but no higher than the
        // last limit slow start found fine (TCP's ssthresh) and no lower
        // than a quarter (one slow period is not the capacity).
        end_slow_start(m);
        let parallel = (m.limit as f64 / r).round() as u32;
        b.clamp(parallel.max(m.limit / 4).min(m.fine).max(1))
    } else if queue {
        let parallel = (m.limit as f64 / r).round() as u32;
        let floor = m.limit - (m.limit / MAX_FALL).max(1).min(m.limit);
        b.clamp(parallel.max(floor).min(m.limit.saturating_sub(1)))
    } else if used
        && !m.slow_start
        && m.ceiling
            .is_some_and(|(c, at)| m.limit + 1 >= c && m.periods - at < HOLD)
    {
        // One under a limit that queued: held there a while before that
        // limit is tried again.
        m.limit
    } else if used && (!m.slow_start || r >= QUEUE_AT) {
        // (In slow start, a mean over the tolerance but inside the noise
        // grows by one only: not a reason to stop, nor to double.)
        if m.slow_start {
            m.fine = m.limit;
        }
        b.clamp(m.limit.saturating_add(1))
    } else if used {
        m.fine = m.limit;
        b.clamp(m.limit.saturating_mul(2))
    } else {
        m.limit
    };
    let stale = m.periods - m.fresh_at >= PROBE_AFTER;
    let since_probe = m.periods - m.probed_at;
    let due = (stale && since_probe >= PROBE_AFTER) || since_probe >= PROBE_EVERY;
    let room = before > b.min.max(1);
    if used && room && !m.slow_start && !queue && due {
        m.probed_at = m.periods;
        m.limit = b.clamp(before - 1);
    }
    if m.limit < before {
        // The answers admitted under `before` may have waited in the
        // instance's queue: until they are in, ticks are not judged (nor
        // is the fall checked on them, which would find latency not lower
        // and take queued latency for the baseline).
        m.drain = u64::from(before);
        m.fall = Some(match chain {
            Some(f) => Fall { to: m.limit, ..f },
            None => Fall {
                from: before,
                to: m.limit,
                queue,
                mean_ms: mean,
                se_ms: se,
                judged,
            },
        });
    }
    m.limit
}

#[cfg(test)]
mod tests;
