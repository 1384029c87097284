//! Properties of the view: it gives exactly what the data plane's
//! `PoolRuntime::slots` gave before the view existed (ported below over
//! plain facts, as the reference), it writes nothing, and [`choose`] only
//! picks usable members, and falls back (ejected but up, then panic
//! mode) only when none is.

use super::*;
use crate::algorithms::registry::{build, Algorithm};
use crate::estimate::Estimates;
use crate::facts::{Facts, Load};
use proptest::prelude::*;

/// `fulcrum_dataplane::snapshot::PoolRuntime::slots` as it was before the
/// view, over plain facts (its `fetch_max` on a copy of the counts): the
/// reference the view must keep matching.
fn slots_before_the_view(
    inputs: Inputs,
    slow_start: u64,
    members: &[Facts],
    now_ms: u64,
    excluded: &[usize],
    ignore_health: bool,
    calls: &mut [u64],
) -> Vec<Slot> {
    let effective_weight = |inst: &Facts, weight: u32| -> u32 {
        let since = inst.up_since_ms.max(inst.ejected_until_ms);
        let elapsed = now_ms.saturating_sub(since);
        if since == 0 || elapsed >= slow_start {
            return weight;
        }
        let ramped = u128::from(weight) * u128::from(elapsed) / u128::from(slow_start);
        (ramped as u32).max(weight / 10).max(1)
    };
    let out: Vec<Slot> = members
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let usable = !excluded.contains(&i)
                && if ignore_health {
                    !inst.drained
                } else {
                    inst.healthy && !inst.drained && now_ms >= inst.ejected_until_ms
                };
            let w = inst.weight_override.unwrap_or(inst.configured_weight);
            let w = if slow_start > 0 {
                effective_weight(inst, w.saturating_mul(100))
            } else {
                w
            };
            let mut cand = Candidate {
                max_concurrent: inst.max_concurrent,
                priority: inst.priority,
                ..Candidate::new(i, w, inst.in_flight)
            };
            if usable {
                if inputs.calls {
                    cand.calls = calls[i];
                }
                if inputs.latency {
                    (cand.latency_ms, cand.error_rate) =
                        inst.estimates.cost(now_ms, cand.in_flight);
                }
                if inputs.resources {
                    if let Some(r) = inst
                        .load
                        .filter(|l| now_ms.saturating_sub(l.at_ms) < 30_000)
                    {
                        (cand.cpu, cand.mem) = (r.cpu, r.mem);
                    }
                }
            }
            Slot { usable, cand }
        })
        .collect();
    if inputs.calls {
        for s in out.iter().filter(|s| !s.usable) {
            if let Some(floor) = crate::rejoin_floor(&out, s.cand.priority) {
                calls[s.cand.slot] = calls[s.cand.slot].max(floor);
            }
        }
    }
    out
}

fn arb_facts() -> impl Strategy<Value = Facts> {
    (
        (
            1u32..6,
            proptest::option::of(1u32..6),
            any::<bool>(),
            any::<bool>(),
        ),
        (0u64..3, 0u64..40, 0u64..40),
        (0u32..4, proptest::option::of(1u32..4), 0usize..4, 0u64..30),
        (
            proptest::option::of(0.0f64..300.0),
            0u64..50,
            proptest::option::of(0u64..60),
        ),
    )
        .prop_map(|(w, t, l, m)| {
            let ((configured_weight, weight_override, healthy, drained), (e, up, until)) = (w, t);
            let (in_flight, max_concurrent, p, calls) = l;
            let (latency, at, report) = m;
            let mut estimates = Estimates::default();
            estimates.observe(latency, latency.is_none(), at);
            Facts {
                configured_weight,
                weight_override,
                healthy,
                drained,
                // Often not ejected; otherwise until some time around now.
                ejected_until_ms: if e == 0 { until * 1_000 } else { 0 },
                up_since_ms: up * 1_000,
                in_flight,
                max_concurrent,
                priority: Priority::ALL[p],
                calls,
                estimates,
                load: report.map(|r| Load {
                    cpu: Some(r as f64 / 60.0),
                    mem: None,
                    at_ms: r * 1_000,
                }),
                ..Facts::default()
            }
        })
}

proptest! {
    /// The view gives the slots and call counts the data plane computed
    /// before it, for any members, time, exclusions, mode and algorithm —
    /// and reading twice gives the same (it writes nothing).
    #[test]
    fn the_view_is_what_pool_runtime_slots_was(
        members in proptest::collection::vec(arb_facts(), 0..8),
        now_s in 0u64..70,
        excluded in proptest::collection::vec(0usize..8, 0..3),
        ignore_health in any::<bool>(),
        alg in 0usize..9,
        slow_start in prop_oneof![Just(0u64), 1u64..30_000],
    ) {
        let now_ms = now_s * 1_000 + 7;
        let inputs = Algorithm::ALL[alg].inputs();
        let v = PoolView { ignore_health, ..PoolView::new(inputs, slow_start, false) };
        let mut calls: Vec<u64> = members.iter().map(|m| m.calls).collect();
        let want = slots_before_the_view(inputs, slow_start, &members, now_ms, &excluded, ignore_health, &mut calls);
        let (mut out, mut changes) = (Vec::new(), Vec::new());
        candidates(&v, &members, &excluded, now_ms, &mut out, &mut changes);
        prop_assert_eq!(&out, &want);
        let mut applied: Vec<u64> = members.iter().map(|m| m.calls).collect();
        for c in &changes {
            match *c {
                Change::RaiseCalls { slot, floor } => {
                    prop_assert!(!out[slot].usable && applied[slot] < floor);
                    applied[slot] = applied[slot].max(floor);
                }
            }
        }
        prop_assert_eq!(applied, calls);
        let (mut again, mut changes_again) = (Vec::new(), Vec::new());
        candidates(&v, &members, &excluded, now_ms, &mut again, &mut changes_again);
        prop_assert_eq!((again, changes_again), (out, changes));
    }

    /// Whatever the facts, a pick is a usable member with room; ejected
    /// members that probes say are up are tried only when nothing else is
    /// usable, and panic mode is only entered when not even those are.
    #[test]
    fn choose_picks_usable_members_and_falls_back_only_when_none_is(
        members in proptest::collection::vec(arb_facts(), 1..8),
        panic in any::<bool>(),
        alg in 0usize..9,
    ) {
        let alg = Algorithm::ALL[alg];
        let now = 30_000;
        let v = PoolView::new(alg.inputs(), 0, panic);
        let b = build(alg, &(0..members.len() as u64).map(|i| (i, 1)).collect::<Vec<_>>());
        let mut rng = fastrand::Rng::with_seed(3);
        let mut ctx = PickContext::new(&mut rng);
        let mut scratch = Scratch::default();
        let c = choose(&v, &members, &[], now, b.as_ref(), &mut ctx, &mut scratch);
        let healthy_usable = {
            let (mut out, mut changes) = (Vec::new(), Vec::new());
            candidates(&v, &members, &[], now, &mut out, &mut changes);
            out.iter().any(|s| s.usable)
        };
        let ejected_but_up = members
            .iter()
            .any(|m| m.healthy && !m.drained && now < m.ejected_until_ms);
        prop_assert_eq!(c.ignored_ejection, !healthy_usable && ejected_but_up);
        prop_assert_eq!(c.ignored_health, panic && !healthy_usable && !ejected_but_up);
        if let SelectOutcome::Picked(i) = c.outcome {
            let m = &members[i];
            prop_assert!(scratch.slots[i].usable && scratch.slots[i].has_room());
            prop_assert!(!m.drained);
            if c.ignored_ejection {
                prop_assert!(m.healthy && now < m.ejected_until_ms);
            } else if !c.ignored_health {
                prop_assert!(m.healthy && now >= m.ejected_until_ms);
            }
        }
    }
}
