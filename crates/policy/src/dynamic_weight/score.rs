//! The performance score of each instance over one interval, relative to
//! its pool: the voice-assistant seed's four components — response time
//! 0.3, resource use 0.3, connections 0.2, error rate 0.2 — each compared
//! with the pool's geometric mean, so the score says how much worse (> 0)
//! or better (< 0) than its peers an instance did, whatever the units.
//!
//! Each component is a *badness* `x > 0` (higher is worse), scored as
//! `ln(x / geometric mean of x)`: twice as slow as the pool's mean is
//! `+0.69`, half as slow `−0.69`, so a ratio and its inverse weigh the same.
//! A component is left out, and the weights of the others renormalised,
//! when it is not measured on every instance compared (no fresh load
//! report: resource use).
//!
//! * **response time**: the interval's mean time to response head.
//! * **resource use**: the mean of the reported cpu and memory utilisation
//!   (an ORCA load report, fresh), at least [`UTILISATION_FLOOR`].
//! * **connections**: requests in flight per unit of the weight the
//!   instance was balanced with. Raw in-flight counts would fight the
//!   goal: an instance twice as big *should* hold twice the requests.
//! * **error rate**: the share of failed tries plus [`ERROR_FLOOR`], so
//!   one error among a few hundred tries on a healthy pool is no signal.

use super::sample::Sample;

/// The seed's weights of the four components.
pub const RESPONSE_TIME: f64 = 0.3;
pub const RESOURCES: f64 = 0.3;
pub const CONNECTIONS: f64 = 0.2;
pub const ERRORS: f64 = 0.2;

/// Added to every error rate: the pool's error rates are compared, and
/// without a floor 1 error in 500 tries against 0 would be an infinite
/// ratio.
pub const ERROR_FLOOR: f64 = 0.01;
/// Smallest utilisation compared (an idle instance reporting 0).
pub const UTILISATION_FLOOR: f64 = 0.01;
/// Smallest latency (ms) and in-flight count per weight compared.
const TINY: f64 = 1e-3;

/// The score of every sample in `measured` (indices into `samples`), in
/// the same order: `Σ wₖ · ln(xₖ / gmean(xₖ)) / Σ wₖ` over the components
/// measured on all of them. Empty when fewer than two are compared
/// (nothing to compare with).
pub fn scores(samples: &[Sample], measured: &[usize]) -> Vec<f64> {
    if measured.len() < 2 {
        return vec![0.0; measured.len()];
    }
    type Badness = fn(&Sample) -> Option<f64>;
    let components: [(f64, Badness); 4] = [
        (RESPONSE_TIME, |s| s.latency_ms.map(|l| l.max(TINY))),
        (RESOURCES, |s| {
            s.utilisation.map(|u| u.clamp(UTILISATION_FLOOR, 1.0))
        }),
        (CONNECTIONS, |s| {
            Some((s.in_flight / f64::from(s.weight.max(1))).max(TINY))
        }),
        (ERRORS, |s| Some(s.error_rate() + ERROR_FLOOR)),
    ];
    let mut out = vec![0.0; measured.len()];
    let mut total = 0.0;
    for (w, badness) in components {
        let Some(logs) = measured
            .iter()
            .map(|&i| badness(&samples[i]).filter(|x| x.is_finite()).map(f64::ln))
            .collect::<Option<Vec<f64>>>()
        else {
            continue; // not measured on every instance: left out
        };
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        for (o, l) in out.iter_mut().zip(&logs) {
            *o += w * (l - mean);
        }
        total += w;
    }
    if total > 0.0 {
        for o in &mut out {
            *o /= total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(latency_ms: f64, in_flight: f64, weight: u32) -> Sample {
        Sample {
            healthy: true,
            requests: 100,
            errors: 0,
            latency_ms: Some(latency_ms),
            in_flight,
            utilisation: None,
            weight,
        }
    }

    #[test]
    fn equal_instances_score_zero_and_scores_sum_to_zero() {
        let xs = [s(50.0, 2.0, 1), s(50.0, 2.0, 1), s(50.0, 2.0, 1)];
        assert_eq!(scores(&xs, &[0, 1, 2]), vec![0.0; 3]);
        let xs = [s(700.0, 14.0, 1), s(50.0, 1.0, 1), s(60.0, 1.0, 1)];
        let sc = scores(&xs, &[0, 1, 2]);
        assert!(sc[0] > 1.0 && sc[1] < 0.0 && sc[2] < 0.0, "{sc:?}");
        assert!(sc.iter().sum::<f64>().abs() < 1e-9);
    }

    #[test]
    fn without_load_reports_resource_use_is_left_out_and_the_rest_renormalised() {
        // Slower by e: the response-time and connection components say +
        // and − 0.5 (the mean of logs is in the middle), error rates are
        // equal: (0.3 + 0.2) × 0.5 / (0.3 + 0.2 + 0.2).
        let e = std::f64::consts::E;
        let xs = [s(e, e, 1), s(1.0, 1.0, 1)];
        let sc = scores(&xs, &[0, 1]);
        assert!((sc[0] - 0.5 * 0.5 / 0.7).abs() < 1e-9, "{sc:?}");
        // A load report on one of the two only: still left out.
        let mut one = xs;
        one[0].utilisation = Some(0.9);
        assert_eq!(scores(&one, &[0, 1]), sc);
        // On both: in, and all four weigh (0.3 + 0.3 + 0.2) × 0.5 / 1.
        let mut both = one;
        both[1].utilisation = Some(0.9 / e);
        let sc = scores(&both, &[0, 1]);
        assert!((sc[0] - 0.4).abs() < 1e-9, "{sc:?}");
    }

    #[test]
    fn connections_count_per_unit_of_weight() {
        // Twice the requests on twice the weight, same latency: even.
        let xs = [s(50.0, 4.0, 2), s(50.0, 2.0, 1)];
        assert_eq!(scores(&xs, &[0, 1]), vec![0.0, 0.0]);
    }

    #[test]
    fn errors_weigh_against_an_instance_but_one_stray_error_hardly() {
        let mut bad = [s(50.0, 1.0, 1), s(50.0, 1.0, 1)];
        bad[0].errors = 20; // 20 %
        let sc = scores(&bad, &[0, 1]);
        assert!(sc[0] > 0.2, "{sc:?}");
        let mut stray = bad;
        stray[0].errors = 1; // 1 %
        let sc = scores(&stray, &[0, 1]);
        assert!(sc[0] < 0.1, "{sc:?}");
    }

    #[test]
    fn one_instance_has_nothing_to_be_compared_with() {
        assert_eq!(scores(&[s(500.0, 9.0, 1)], &[0]), vec![0.0]);
    }
}
