//! Configuration types of the mock: [`MockConfig`], [`Latency`] and [`FailureMode`].
//!
//! These are plain data; the server copies them into atomics at start so most
//! of them can be changed at runtime (see [`crate::MockServer`]). Latency
//! distributions sample from a `fastrand::Rng` handed in by the caller so that
//! a seeded server produces a reproducible sequence of delays.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Upper bound of any sampled delay, so a long-tail distribution with a huge
/// sigma cannot produce an overflowing or absurd sleep.
const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// Settings of one mock instance.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Instance name, echoed in response bodies and in the `x-mock-instance` header.
    pub name: String,
    /// Delay applied to every request except `/health` and `/__mock/*`.
    pub latency: Latency,
    /// Maximum number of requests processed concurrently. Requests beyond it
    /// wait in FIFO order (like a GPU queue) instead of being rejected.
    pub capacity: Option<usize>,
    /// Probability in `0..=1` that a request answers `500 {"error":"injected"}`.
    pub error_rate: f64,
    /// How the instance misbehaves, if at all.
    pub mode: FailureMode,
    /// `/health` answers 200 when true and 503 when false.
    pub healthy: bool,
    /// Seed of the random generator (latency sampling, error injection).
    pub seed: Option<u64>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            name: "mock".to_string(),
            latency: Latency::default(),
            capacity: None,
            error_rate: 0.0,
            mode: FailureMode::Normal,
            healthy: true,
            seed: None,
        }
    }
}

/// Distribution of the artificial processing delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always the same delay.
    Fixed(Duration),
    /// Uniformly distributed between `min` and `max` (inclusive of `min`).
    Uniform { min: Duration, max: Duration },
    /// Long-tailed: `median * exp(sigma * Z)` with `Z` standard normal.
    LogNormal { median: Duration, sigma: f64 },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(Duration::ZERO)
    }
}

impl Latency {
    /// Builds a latency from command-line style parts: `base` alone is fixed,
    /// `base..=max` is uniform, `base` with a sigma is log-normal around `base`.
    pub fn from_parts(
        base: Duration,
        max: Option<Duration>,
        sigma: Option<f64>,
    ) -> Result<Latency, String> {
        match (max, sigma) {
            (Some(_), Some(_)) => Err("a maximum and a sigma cannot be combined".to_string()),
            (Some(max), None) if max < base => Err(format!(
                "maximum latency {max:?} is below the minimum {base:?}"
            )),
            (Some(max), None) => Ok(Latency::Uniform { min: base, max }),
            (None, Some(sigma)) if !(sigma.is_finite() && sigma >= 0.0) => {
                Err(format!("sigma must be a finite number >= 0, got {sigma}"))
            }
            (None, Some(sigma)) => Ok(Latency::LogNormal {
                median: base,
                sigma,
            }),
            (None, None) => Ok(Latency::Fixed(base)),
        }
    }

    /// True when every sample is zero, which lets the hot path skip sampling.
    pub fn is_zero(&self) -> bool {
        match *self {
            Latency::Fixed(d) => d.is_zero(),
            Latency::Uniform { max, .. } => max.is_zero(),
            Latency::LogNormal { median, .. } => median.is_zero(),
        }
    }

    /// Draws one delay.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        let secs = match *self {
            Latency::Fixed(d) => return d.min(MAX_SAMPLE),
            Latency::Uniform { min, max } if max <= min => return min.min(MAX_SAMPLE),
            Latency::Uniform { min, max } => {
                min.as_secs_f64() + (max - min).as_secs_f64() * rng.f64()
            }
            Latency::LogNormal { median, sigma } => {
                median.as_secs_f64() * (sigma * standard_normal(rng)).exp()
            }
        };
        Duration::try_from_secs_f64(secs).map_or(MAX_SAMPLE, |d| d.min(MAX_SAMPLE))
    }
}

/// Box-Muller transform: one standard normal sample from two uniform ones.
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1], so ln() is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How a mock instance fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Answers normally.
    #[default]
    Normal,
    /// Accepts and reads the request, then never answers.
    Hang,
    /// Answers every request with `500 {"error":"injected"}`.
    Error500,
    /// Reads the request head, then drops the TCP connection (RST) without answering.
    Reset,
    /// Answers with non-HTTP bytes (`SSH-2.0-garbage\r\n`), then closes.
    Garbage,
    /// Answers `503 {"error":"overloaded"}` with `Retry-After: 2` (an
    /// instance asking for a pause); `/health` stays healthy.
    Overloaded,
}

impl FailureMode {
    /// The name accepted by [`FromStr`] and the control endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::Normal => "normal",
            FailureMode::Hang => "hang",
            FailureMode::Error500 => "500",
            FailureMode::Reset => "reset",
            FailureMode::Garbage => "garbage",
            FailureMode::Overloaded => "503",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> FailureMode {
        match v {
            1 => FailureMode::Hang,
            2 => FailureMode::Error500,
            3 => FailureMode::Reset,
            4 => FailureMode::Garbage,
            5 => FailureMode::Overloaded,
            _ => FailureMode::Normal,
        }
    }
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FailureMode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [FailureMode; 6] = [
        FailureMode::Normal,
        FailureMode::Hang,
        FailureMode::Error500,
        FailureMode::Reset,
        FailureMode::Garbage,
        FailureMode::Overloaded,
    ];

    /// The other names [`FromStr`] accepts for this mode.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            FailureMode::Normal => &["ok"],
            FailureMode::Error500 => &["error500", "error"],
            FailureMode::Overloaded => &["overloaded"],
            _ => &[],
        }
    }

    /// What the mode does, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            FailureMode::Normal => "answer normally",
            FailureMode::Hang => "read the request, never answer",
            FailureMode::Error500 => "answer 500 {\"error\":\"injected\"}",
            FailureMode::Reset => "drop the connection (RST) after the request head",
            FailureMode::Garbage => "answer non-HTTP bytes, then close",
            FailureMode::Overloaded => "answer 503 with Retry-After: 2 (/health stays healthy)",
        }
    }
}

impl FromStr for FailureMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.to_ascii_lowercase();
        FailureMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s || m.aliases().contains(&s.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = FailureMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown mode {s:?} (expected one of: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn uniform_stays_in_bounds() {
        let l = Latency::Uniform {
            min: 10 * MS,
            max: 20 * MS,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..1000 {
            let d = l.sample(&mut rng);
            assert!(d >= 10 * MS && d <= 20 * MS, "{d:?}");
        }
    }

    #[test]
    fn lognormal_has_the_right_median_and_a_tail() {
        let l = Latency::LogNormal {
            median: 10 * MS,
            sigma: 1.0,
        };
        let mut rng = fastrand::Rng::with_seed(42);
        let mut v: Vec<Duration> = (0..4001).map(|_| l.sample(&mut rng)).collect();
        v.sort();
        let median = v[2000];
        assert!(median > 9 * MS && median < 11 * MS, "median {median:?}");
        assert!(v[3960] > 50 * MS, "p99 {:?} shows no tail", v[3960]);
    }

    #[test]
    fn huge_sigma_is_capped() {
        let l = Latency::LogNormal {
            median: 1000 * MS,
            sigma: 1e6,
        };
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            assert!(l.sample(&mut rng) <= MAX_SAMPLE);
        }
    }

    #[test]
    fn from_parts_and_modes_parse() {
        assert_eq!(Latency::from_parts(MS, None, None), Ok(Latency::Fixed(MS)));
        assert!(Latency::from_parts(2 * MS, Some(MS), None).is_err());
        assert!(Latency::from_parts(MS, None, Some(-1.0)).is_err());
        for m in ["normal", "hang", "500", "reset", "garbage"] {
            assert_eq!(m.parse::<FailureMode>().unwrap().as_str(), m);
        }
        assert!("nope".parse::<FailureMode>().is_err());
        for v in 0..5u8 {
            assert_eq!(FailureMode::from_u8(v).to_u8(), v);
        }
    }
}
