//! The last 15 minutes of each pool and instance, in bounded memory: what
//! the dashboard's charts draw, so a page opened now shows what happened
//! before it was opened.
//!
//! A sampler ([`super::Dashboard::start`]) records the pools' live stats
//! every [`STEP`]; [`History`] keeps the last [`POINTS`] samples (15 min)
//! as parallel rings of `f32`: one ring of times, and per pool (req/s, p99,
//! queue length) and per instance of a pool (req/s, p99, in-flight). A
//! pool or instance that leaves the snapshot leaves the history; one that
//! joins starts with gaps (`null` in the JSON) before its first sample.
//!
//! **Memory**, stated and tested: [`POINTS`] × (8 + 12 × (pools +
//! instance memberships)) bytes of samples, plus names — 450 points ×
//! (8 + 12 × 201) ≈ 1.09 MB for one pool of 200 instances. Per sample:
//! req/s from the instance's request counter (so exact over the step),
//! p99 from the recent window (`stats.window`, so it trails by up to a
//! window), in-flight and queue length as read at the sample.

use fulcrum_dataplane::PoolStats;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Time between samples.
pub const STEP: Duration = Duration::from_secs(2);
/// Samples kept: 15 minutes.
pub const POINTS: usize = 450;

/// One series: a value per sample, aligned with [`History`]'s times.
type Ring = VecDeque<f32>;

fn ring(points: usize) -> Ring {
    VecDeque::with_capacity(points)
}

#[derive(Debug)]
struct InstanceSeries {
    rps: Ring,
    p99_ms: Ring,
    in_flight: Ring,
    /// The request counter at the last sample.
    last_requests: u64,
}

#[derive(Debug)]
struct PoolSeries {
    rps: Ring,
    p99_ms: Ring,
    queued: Ring,
    instances: BTreeMap<String, InstanceSeries>,
}

/// The kept samples ([module doc](self)).
#[derive(Debug)]
pub struct History {
    points: usize,
    /// Sample times, ms since the Unix epoch, oldest first.
    times: VecDeque<u64>,
    pools: BTreeMap<String, PoolSeries>,
}

impl Default for History {
    fn default() -> Self {
        Self::new(POINTS)
    }
}

/// `ring` made `len` values long (`len` ≤ the capacity it was made
/// with) ending in `v`: its oldest values dropped first, or gaps put before
/// `v` for a series that joined late. Never grows past its capacity.
fn push(ring: &mut Ring, len: usize, v: f32) {
    while ring.len() >= len {
        ring.pop_front();
    }
    while ring.len() + 1 < len {
        ring.push_back(f32::NAN);
    }
    ring.push_back(v);
}

fn opt(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |x| x as f32)
}

impl History {
    /// Keeps the last `points` samples (at least 1).
    pub fn new(points: usize) -> Self {
        Self {
            points: points.max(1),
            times: VecDeque::with_capacity(points.max(1)),
            pools: BTreeMap::new(),
        }
    }

    /// Records one sample of `pools` taken at `unix_ms`.
    pub fn record(&mut self, unix_ms: u64, pools: &[PoolStats]) {
        let dt_s = self
            .times
            .back()
            .map(|&t| unix_ms.saturating_sub(t) as f64 / 1000.0);
        if self.times.len() == self.points {
            self.times.pop_front();
        }
        self.times.push_back(unix_ms);
        let (len, points) = (self.times.len(), self.points);
        // Whoever left the snapshot leaves the history.
        self.pools
            .retain(|name, _| pools.iter().any(|p| &p.name == name));
        for p in pools {
            let series = self
                .pools
                .entry(p.name.clone())
                .or_insert_with(|| PoolSeries {
                    rps: ring(points),
                    p99_ms: ring(points),
                    queued: ring(points),
                    instances: BTreeMap::new(),
                });
            series
                .instances
                .retain(|ep, _| p.instances.iter().any(|m| &m.stats.endpoint == ep));
            let mut pool_rps = 0.0f64;
            for m in &p.instances {
                let s = &m.stats;
                let inst = series
                    .instances
                    .entry(s.endpoint.clone())
                    .or_insert_with(|| InstanceSeries {
                        rps: ring(points),
                        p99_ms: ring(points),
                        in_flight: ring(points),
                        last_requests: s.requests,
                    });
                // The first sample of a series has no rate yet.
                let rps = match dt_s {
                    Some(dt) if dt > 0.0 && inst.rps.len() + 1 >= len => {
                        s.requests.saturating_sub(inst.last_requests) as f64 / dt
                    }
                    _ => f64::NAN,
                };
                inst.last_requests = s.requests;
                if rps.is_finite() {
                    pool_rps += rps;
                }
                push(&mut inst.rps, len, rps as f32);
                push(&mut inst.p99_ms, len, opt(m.window.p99_ms));
                push(&mut inst.in_flight, len, s.in_flight as f32);
            }
            push(&mut series.rps, len, pool_rps as f32);
            push(&mut series.p99_ms, len, opt(p.window.p99_ms));
            push(&mut series.queued, len, p.queued as f32);
        }
    }

    /// Samples kept now.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Bytes the samples take (rings' capacity; names not counted): what
    /// the module doc's bound is about.
    pub fn sample_bytes(&self) -> usize {
        let f = std::mem::size_of::<f32>();
        self.times.capacity() * std::mem::size_of::<u64>()
            + self
                .pools
                .values()
                .map(|p| {
                    (p.rps.capacity() + p.p99_ms.capacity() + p.queued.capacity()) * f
                        + p.instances
                            .values()
                            .map(|i| {
                                (i.rps.capacity() + i.p99_ms.capacity() + i.in_flight.capacity())
                                    * f
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// The samples taken after `since_ms` (all with 0), of one pool or all.
    pub fn view(&self, pool: Option<&str>, since_ms: u64) -> HistoryView {
        let skip = self.times.partition_point(|&t| t <= since_ms);
        let tail = |r: &Ring| r.iter().skip(skip).copied().map(Sample).collect();
        HistoryView {
            step_s: STEP.as_secs(),
            points: self.points,
            t: self.times.iter().skip(skip).copied().collect(),
            pools: self
                .pools
                .iter()
                .filter(|(name, _)| pool.is_none_or(|p| p == name.as_str()))
                .map(|(name, s)| PoolHistory {
                    name: name.clone(),
                    rps: tail(&s.rps),
                    p99_ms: tail(&s.p99_ms),
                    queued: tail(&s.queued),
                    instances: s
                        .instances
                        .iter()
                        .map(|(ep, i)| InstanceHistory {
                            endpoint: ep.clone(),
                            rps: tail(&i.rps),
                            p99_ms: tail(&i.p99_ms),
                            in_flight: tail(&i.in_flight),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// One value of a series: a number rounded to 3 decimals, or `null` for a
/// gap (no sample yet, no latency in the window).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample(pub f32);

impl Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64((f64::from(self.0) * 1000.0).round() / 1000.0)
        } else {
            s.serialize_none()
        }
    }
}

impl utoipa::PartialSchema for Sample {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                utoipa::openapi::schema::Type::Number,
                utoipa::openapi::schema::Type::Null,
            ]))
            .into()
    }
}

impl utoipa::ToSchema for Sample {}

/// `GET /api/v1/history`: every series aligned with `t`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// Seconds between samples.
    pub step_s: u64,
    /// Samples kept at most (15 minutes).
    pub points: usize,
    /// Sample times, ms since the Unix epoch, oldest first.
    pub t: Vec<u64>,
    pub pools: Vec<PoolHistory>,
}

/// One pool's series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolHistory {
    pub name: String,
    /// Requests per second over each step (its instances' sum).
    pub rps: Vec<Sample>,
    /// The pool's p99 time to response head over the recent window.
    pub p99_ms: Vec<Sample>,
    /// Requests waiting in the pool's queue.
    pub queued: Vec<Sample>,
    pub instances: Vec<InstanceHistory>,
}

/// One instance's series in a pool.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceHistory {
    pub endpoint: String,
    pub rps: Vec<Sample>,
    pub p99_ms: Vec<Sample>,
    pub in_flight: Vec<Sample>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_dataplane::Gateway;

    /// Pool stats of a real snapshot with `n` instances in pool `p`.
    fn stats(n: usize) -> Vec<PoolStats> {
        let mut yaml = String::from("pools:\n  p:\n    instances:\n");
        for i in 0..n {
            yaml += &format!(
                "      - endpoint: http://10.0.{}.{}:80\n",
                i / 250,
                i % 250 + 1
            );
        }
        let cfg = fulcrum_config::parse(&yaml, &|_| None).expect("config");
        Gateway::new(cfg).stats()
    }

    #[test]
    fn series_stay_aligned_and_join_late_with_gaps() {
        let mut h = History::new(5);
        let one = stats(1);
        h.record(1_000, &one);
        let mut two = stats(2);
        two[0].instances[0].stats.requests = 10;
        h.record(3_000, &two);
        let v = h.view(None, 0);
        assert_eq!(v.t, [1_000, 3_000]);
        let p = &v.pools[0];
        assert_eq!(p.rps.len(), 2);
        for i in &p.instances {
            assert_eq!(i.rps.len(), 2, "{}", i.endpoint);
            assert_eq!(i.in_flight.len(), 2);
        }
        // The first instance: no rate at its first sample, 10 requests in
        // 2 s at the second. The second instance: a gap, then its first
        // sample (no rate yet).
        let first = &p.instances[0];
        assert!(first.rps[0].0.is_nan());
        assert_eq!(first.rps[1].0, 5.0);
        let second = &p.instances[1];
        assert!(second.rps[0].0.is_nan() && second.rps[1].0.is_nan());
        assert!(second.in_flight[0].0.is_nan(), "a gap before it joined");
        assert_eq!(p.rps[1].0, 5.0, "the pool's rate is its instances' sum");
        assert_eq!(
            serde_json::to_string(&first.rps).unwrap(),
            "[null,5.0]",
            "gaps are null"
        );
    }

    #[test]
    fn only_the_last_points_are_kept_and_since_filters() {
        let mut h = History::new(3);
        let s = stats(1);
        for t in 1..=10 {
            h.record(t * 1000, &s);
        }
        assert_eq!(h.len(), 3);
        let v = h.view(None, 0);
        assert_eq!(v.t, [8_000, 9_000, 10_000]);
        assert_eq!(v.pools[0].instances[0].rps.len(), 3);
        assert_eq!(h.view(None, 9_000).t, [10_000]);
        assert!(h.view(None, 10_000).t.is_empty());
        assert_eq!(h.view(Some("p"), 0).pools.len(), 1);
        assert!(h.view(Some("other"), 0).pools.is_empty());
    }

    #[test]
    fn instances_and_pools_that_leave_leave_the_history() {
        let mut h = History::new(10);
        h.record(1_000, &stats(3));
        h.record(2_000, &stats(1));
        assert_eq!(h.view(None, 0).pools[0].instances.len(), 1);
        h.record(3_000, &[]);
        assert!(h.view(None, 0).pools.is_empty());
    }

    /// The bound the module doc states, with 200 instances after more
    /// than 15 minutes of samples.
    #[test]
    fn memory_is_bounded_with_200_instances() {
        let mut h = History::default();
        let mut s = stats(200);
        for t in 0..(POINTS as u64 * 2 + 7) {
            for m in &mut s[0].instances {
                m.stats.requests += 3;
            }
            h.record(1_000 + t * 2_000, &s);
        }
        assert_eq!(h.len(), POINTS);
        let bound = POINTS * (8 + 12 * (1 + 200));
        let used = h.sample_bytes();
        assert!(used <= bound, "{used} bytes > {bound}");
        assert!(used >= bound * 9 / 10, "{used} bytes: the bound is tight");
        let v = h.view(None, 0);
        assert!(v.pools[0].instances.iter().all(|i| i.rps.len() == POINTS));
        assert_eq!(v.pools[0].instances[0].rps[POINTS - 1].0, 1.5);
    }
}
