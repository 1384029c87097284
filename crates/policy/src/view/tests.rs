//! Unit tests of the view: the weight and usability rules, which facts are
//! read, the rejoin floor, panic mode. The properties are in `reference.rs`.

use super::*;
use crate::algorithms::registry::{build, Algorithm};
use crate::estimate::{Estimates, LOAD_REPORT_TTL_MS};
use crate::facts::{Facts, Load};
use std::cell::Cell;

fn view(inputs: Inputs) -> PoolView {
    PoolView::new(inputs, 0, false)
}

const ALL_INPUTS: Inputs = Inputs {
    calls: true,
    latency: true,
    resources: true,
};

fn slots_of(view: &PoolView, members: &[Facts], excluded: &[usize], now_ms: u64) -> Vec<Slot> {
    let (mut out, mut changes) = (Vec::new(), Vec::new());
    candidates(view, members, excluded, now_ms, &mut out, &mut changes);
    out
}

#[test]
fn the_override_wins_then_the_dynamic_weight_then_the_configured_one() {
    let v = view(Inputs::default());
    let f = |weight_override, dynamic_weight| Facts {
        configured_weight: 3,
        weight_override,
        dynamic_weight,
        ..Facts::default()
    };
    assert_eq!(weight(&v, &f(None, None), 0), 3);
    assert_eq!(weight(&v, &f(None, Some(5)), 0), 5);
    assert_eq!(weight(&v, &f(Some(7), Some(5)), 0), 7);
    assert_eq!(weight(&v, &f(Some(7), None), 0), 7);
}

#[test]
fn slow_start_scales_and_ramps_from_the_later_of_entry_and_ejection_end() {
    let v = PoolView::new(Inputs::default(), 10_000, false);
    let f = Facts {
        configured_weight: 2,
        up_since_ms: 1_000,
        ..Facts::default()
    };
    assert_eq!(weight(&v, &f, 1_000), 20, "a tenth of 2 × 100");
    assert_eq!(weight(&v, &f, 6_000), 100);
    assert_eq!(weight(&v, &f, 11_000), 200);
    let ejected = Facts {
        ejected_until_ms: 20_000,
        ..f
    };
    assert_eq!(weight(&v, &ejected, 25_000), 100, "ramps again after it");
    let from_start = Facts {
        up_since_ms: 0,
        ..f
    };
    assert_eq!(weight(&v, &from_start, 1), 200, "present since start-up");
    assert_eq!(
        weight(&view(Inputs::default()), &f, 1_000),
        2,
        "off: unscaled"
    );
}

#[test]
fn usable_means_healthy_not_drained_not_ejected_not_excluded() {
    let ok = Facts::default();
    let members = [
        ok,
        Facts {
            healthy: false,
            ..ok
        },
        Facts {
            drained: true,
            ..ok
        },
        Facts {
            ejected_until_ms: 100,
            ..ok
        },
        Facts {
            ejected_until_ms: 50,
            ..ok
        },
        ok,
    ];
    let usable = |v: &PoolView, excluded: &[usize]| -> Vec<bool> {
        slots_of(v, &members, excluded, 50)
            .iter()
            .map(|s| s.usable)
            .collect()
    };
    let v = view(Inputs::default());
    assert_eq!(
        usable(&v, &[5]),
        [true, false, false, false, true, false],
        "ejected until now is usable now"
    );
    let panic = PoolView {
        ignore_health: true,
        ..v
    };
    assert_eq!(
        usable(&panic, &[5]),
        [true, true, false, true, true, false],
        "panic mode ignores health and ejection, never drain or exclusion"
    );
}

#[test]
fn every_slot_carries_its_index_limit_tier_and_in_flight() {
    let f = Facts {
        in_flight: 4,
        max_concurrent: Some(9),
        priority: Priority::Low,
        healthy: false,
        ..Facts::default()
    };
    let s = slots_of(&view(Inputs::default()), &[Facts::default(), f], &[], 0);
    assert_eq!(s[1].cand.slot, 1);
    assert_eq!(
        (
            s[1].cand.in_flight,
            s[1].cand.max_concurrent,
            s[1].cand.priority
        ),
        (4, Some(9), Priority::Low)
    );
}

/// Counts which facts the view reads.
#[derive(Default)]
struct Spy {
    facts: Facts,
    calls: Cell<u32>,
    estimates: Cell<u32>,
    load: Cell<u32>,
    up_since: Cell<u32>,
}

impl InstanceFacts for Spy {
    fn configured_weight(&self) -> u32 {
        self.facts.configured_weight
    }
    fn weight_override(&self) -> Option<u32> {
        self.facts.weight_override
    }
    fn healthy(&self) -> bool {
        self.facts.healthy
    }
    fn drained(&self) -> bool {
        self.facts.drained
    }
    fn ejected_until_ms(&self) -> u64 {
        self.facts.ejected_until_ms
    }
    fn up_since_ms(&self) -> u64 {
        self.up_since.set(self.up_since.get() + 1);
        self.facts.up_since_ms
    }
    fn in_flight(&self) -> u32 {
        self.facts.in_flight
    }
    fn max_concurrent(&self) -> Option<u32> {
        self.facts.max_concurrent
    }
    fn priority(&self) -> Priority {
        self.facts.priority
    }
    fn calls(&self) -> u64 {
        self.calls.set(self.calls.get() + 1);
        self.facts.calls
    }
    fn estimates(&self) -> Estimates {
        self.estimates.set(self.estimates.get() + 1);
        self.facts.estimates
    }
    fn load(&self) -> Option<Load> {
        self.load.set(self.load.get() + 1);
        self.facts.load
    }
}

#[test]
fn only_the_facts_the_algorithm_needs_are_read() {
    let run = |inputs: Inputs, slow_start_ms: u64, healthy: bool| {
        let spy = Spy {
            facts: Facts {
                healthy,
                ..Facts::default()
            },
            ..Spy::default()
        };
        let (mut out, mut changes) = (Vec::new(), Vec::new());
        let v = PoolView::new(inputs, slow_start_ms, false);
        candidates(
            &v,
            std::slice::from_ref(&spy),
            &[],
            0,
            &mut out,
            &mut changes,
        );
        [&spy.calls, &spy.estimates, &spy.load, &spy.up_since].map(Cell::get)
    };
    assert_eq!(run(Inputs::default(), 0, true), [0, 0, 0, 0]);
    assert_eq!(run(ALL_INPUTS, 0, true), [1, 1, 1, 0]);
    assert_eq!(run(Inputs::default(), 5, true), [0, 0, 0, 1]);
    // Out of service: no measurement; only its count, for the floor (and
    // with no instance in service there is no floor to compare with).
    assert_eq!(run(ALL_INPUTS, 0, false), [0, 0, 0, 0]);
}

#[test]
fn measurements_fill_the_candidate_and_a_stale_report_counts_as_none() {
    let mut est = Estimates::default();
    est.observe(Some(80.0), true, 1_000);
    let report = Load {
        cpu: Some(0.7),
        mem: Some(0.2),
        at_ms: 1_000,
    };
    let f = Facts {
        calls: 12,
        estimates: est,
        load: Some(report),
        in_flight: 1,
        ..Facts::default()
    };
    let now = 1_000 + LOAD_REPORT_TTL_MS - 1;
    let c = slots_of(&view(ALL_INPUTS), &[f], &[], now)[0].cand;
    assert_eq!(c.calls, 12);
    assert_eq!((c.latency_ms, c.error_rate), est.cost(now, 1));
    assert_eq!((c.cpu, c.mem), (Some(0.7), Some(0.2)));
    let c = slots_of(&view(ALL_INPUTS), &[f], &[], now + 1)[0].cand;
    assert_eq!((c.cpu, c.mem), (None, None), "stale");
    let c = slots_of(&view(Inputs::default()), &[f], &[], now)[0].cand;
    assert_eq!(c, Candidate::new(0, 1, 1), "an algorithm without inputs");
}

#[test]
fn the_floor_raises_only_instances_out_of_service_below_their_tiers_minimum() {
    let f = |calls, healthy, priority| Facts {
        calls,
        healthy,
        priority,
        ..Facts::default()
    };
    let members = [
        f(50, true, Priority::Normal),
        f(40, true, Priority::Normal),
        f(10, false, Priority::Normal), // raised to 40
        f(45, false, Priority::Normal), // already above: left alone
        f(0, true, Priority::Backup),   // in service: never raised
        f(0, false, Priority::Backup),  // raised to the backups' 0: no change
        f(3, false, Priority::High),    // no High in service: no floor
        f(2, true, Priority::Normal),   // excluded below: out of service
    ];
    let calls = view(Inputs {
        calls: true,
        ..Inputs::default()
    });
    let (mut out, mut changes) = (Vec::new(), Vec::new());
    candidates(&calls, &members, &[7], 0, &mut out, &mut changes);
    assert_eq!(
        changes,
        [
            Change::RaiseCalls { slot: 2, floor: 40 },
            Change::RaiseCalls { slot: 7, floor: 40 }
        ]
    );
    candidates(
        &view(Inputs::default()),
        &members,
        &[7],
        0,
        &mut out,
        &mut changes,
    );
    assert!(changes.is_empty(), "only for algorithms that count calls");
}

fn rr(n: usize) -> Box<dyn Balancer> {
    build(
        Algorithm::RoundRobin,
        &(0..n as u64).map(|i| (i, 1)).collect::<Vec<_>>(),
    )
}

fn choose_with(v: &PoolView, members: &[Facts], excluded: &[usize]) -> Choice {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut ctx = PickContext::new(&mut rng);
    let b = rr(members.len());
    choose(
        v,
        members,
        excluded,
        0,
        b.as_ref(),
        &mut ctx,
        &mut Scratch::default(),
    )
}

#[test]
fn panic_mode_tries_the_unhealthy_but_never_the_drained_or_with_exclusions() {
    let down = Facts {
        healthy: false,
        ..Facts::default()
    };
    let drained = Facts {
        drained: true,
        ..Facts::default()
    };
    let panic = PoolView::new(Inputs::default(), 0, true);
    let picked = |i| Choice {
        outcome: SelectOutcome::Picked(i),
        ignored_health: true,
        ignored_ejection: false,
        reason: PickReason::Panic,
    };
    let down_choice = |ignored_health| Choice {
        outcome: SelectOutcome::Down,
        ignored_health,
        ignored_ejection: false,
        reason: match ignored_health {
            true => PickReason::Panic,
            false => PickReason::Algorithm,
        },
    };
    assert_eq!(choose_with(&panic, &[drained, down], &[]), picked(1));
    assert_eq!(choose_with(&panic, &[drained], &[]), down_choice(true));
    assert_eq!(choose_with(&panic, &[down, down], &[0]), down_choice(false));
    let no_panic = PoolView::new(Inputs::default(), 0, false);
    assert_eq!(choose_with(&no_panic, &[down], &[]), down_choice(false));
    let healthy = Choice {
        outcome: SelectOutcome::Picked(1),
        ignored_health: false,
        ignored_ejection: false,
        reason: PickReason::Algorithm,
    };
    assert_eq!(choose_with(&panic, &[down, Facts::default()], &[]), healthy);
}

/// Issue #11: passive ejection must not empty a pool. When every member
/// left is ejected (or cooling down) but probes say it is up, the request
/// is tried on those anyway instead of being refused; members that probes
/// found down, drained or excluded ones are still never tried, and an
/// un-ejected member is always preferred.
#[test]
fn when_every_member_left_is_ejected_the_ejected_ones_are_tried_anyway() {
    let ejected = Facts {
        ejected_until_ms: 60_000,
        ..Facts::default()
    };
    let down = Facts {
        healthy: false,
        ..Facts::default()
    };
    let drained_ejected = Facts {
        drained: true,
        ..ejected
    };
    let down_ejected = Facts {
        healthy: false,
        ..ejected
    };
    let v = PoolView::new(Inputs::default(), 0, false);
    let outcome =
        |members: &[Facts], excluded: &[usize]| choose_with(&v, members, excluded).outcome;
    assert_eq!(outcome(&[ejected, down], &[]), SelectOutcome::Picked(0));
    assert_eq!(
        choose_with(&v, &[ejected, down], &[]).reason,
        PickReason::EjectedFallback,
        "the pick says it fell back to an ejected instance"
    );
    assert_eq!(
        outcome(&[down, ejected, drained_ejected], &[]),
        SelectOutcome::Picked(1)
    );
    assert_eq!(
        outcome(&[ejected, ejected], &[0]),
        SelectOutcome::Picked(1),
        "a retry too"
    );
    assert_eq!(
        outcome(&[ejected, down], &[0]),
        SelectOutcome::Down,
        "excluded"
    );
    assert_eq!(
        outcome(&[drained_ejected, down_ejected], &[]),
        SelectOutcome::Down
    );
    assert_eq!(
        outcome(&[ejected, Facts::default()], &[]),
        SelectOutcome::Picked(1)
    );
    // Every ejected member that probes vouch for takes a share.
    let mut rng = fastrand::Rng::with_seed(1);
    let mut ctx = PickContext::new(&mut rng);
    let (b, mut scratch) = (rr(3), Scratch::default());
    let mut picked = [0; 3];
    for _ in 0..30 {
        let c = choose(
            &v,
            &[ejected, down, ejected],
            &[],
            0,
            b.as_ref(),
            &mut ctx,
            &mut scratch,
        );
        match c.outcome {
            SelectOutcome::Picked(i) => picked[i] += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(picked, [15, 0, 15]);
}
