//! The view: the one place that turns the facts of a pool's members
//! ([`InstanceFacts`]) into the [`Slot`]s the selector and the algorithms
//! see, and the pure part of choosing an instance ([`choose`]): select,
//! and fall back to panic mode when nothing is usable.
//!
//! Use it on every balancing decision, in the data plane and in the
//! simulator alike, so that both decide from the same inputs by the same
//! rules:
//!
//! * **usable** = healthy, not drained, not ejected or cooling down
//!   (`now ≥ ejected_until`), not excluded by the caller. When that leaves
//!   nothing, the ejected ones are tried anyway (`ignore_ejection`):
//!   healthy, not drained, not excluded. In panic mode (`ignore_health`)
//!   only not drained and not excluded.
//! * **weight** = the operator's override, else a dynamic weight, else the
//!   configured one; then the slow-start ramp ([`crate::slow_start`]).
//! * **measurements** are read only for usable instances and only those the
//!   algorithm's [`Inputs`] name: calls, estimates
//!   ([`crate::estimate::Estimates::cost`]), a fresh load report
//!   ([`crate::estimate::fresh`]).
//! * the **`least_calls` rejoin floor**: an instance out of service is held
//!   at the least call count of its tier's instances in service
//!   ([`crate::rejoin_floor`]). The view does not write it: it returns a
//!   [`Change`] that the caller applies (the data plane with `fetch_max`).
//!
//! Nothing is allocated per call: the caller keeps the vectors (a
//! [`Scratch`]) and the view clears and refills them.
//!
//! Two fallbacks, when nothing is usable. **Ejected but up**: passive
//! ejection (and a `Retry-After` cool-down) is a guess from a few failed
//! requests, and active probes may have since found the instance fine,
//! so when the only instances left are ejected ones that probes say are
//! up, they are tried rather than the request refused (issue #11; what
//! Envoy's panic routing does for ejected hosts). Always on. **Panic
//! mode** (the pool's `panic`) is Envoy's panic threshold at 0 %: when
//! every instance looks down, trying them anyway beats refusing every
//! request.

use crate::algorithms::rejoin_floor;
use crate::candidate::{Balancer, Candidate, Inputs, PickContext};
use crate::estimate::fresh;
use crate::facts::InstanceFacts;
use crate::priority::Priority;
use crate::reason::PickReason;
use crate::select::{select, SelectOutcome};
use crate::slot::Slot;
use crate::slow_start;

/// A pool's settings that shape its view. Built once per pool snapshot;
/// `Copy`, so a decision takes its own and may set [`Self::ignore_health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolView {
    /// What the pool's algorithm reads (`Algorithm::inputs`).
    pub inputs: Inputs,
    /// The pool's `slow_start`, ms (0 = off).
    pub slow_start_ms: u64,
    /// The pool's `panic` setting: when no instance is usable and the caller
    /// excludes none, [`choose`] tries them all, health aside.
    pub panic: bool,
    /// This pass is in panic mode: health, ejection and cool-down ignored.
    pub ignore_health: bool,
    /// This pass tries the ejected (or cooling-down) instances that probes
    /// say are up: nothing else was usable.
    pub ignore_ejection: bool,
}

impl PoolView {
    pub fn new(inputs: Inputs, slow_start_ms: u64, panic: bool) -> Self {
        Self {
            inputs,
            slow_start_ms,
            panic,
            ignore_health: false,
            ignore_ejection: false,
        }
    }
}

/// A state change the view asks the caller to make; the view itself only
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Raise the call count of member `slot` to at least `floor` (the
    /// `least_calls` rejoin floor; the data plane: `calls.fetch_max(floor)`).
    /// Only given when its count is below `floor`.
    RaiseCalls { slot: usize, floor: u64 },
}

/// The selector's view of every member at `now_ms`, into `out` (cleared
/// first; `out[i]` is `members[i]`), and the changes the caller should
/// make, into `changes` (cleared first). `excluded` are slots the request
/// must not use (tried already).
pub fn candidates<F: InstanceFacts>(
    view: &PoolView,
    members: &[F],
    excluded: &[usize],
    now_ms: u64,
    out: &mut Vec<Slot>,
    changes: &mut Vec<Change>,
) {
    out.clear();
    changes.clear();
    let inputs = view.inputs;
    out.extend(members.iter().enumerate().map(|(i, m)| {
        let usable = !excluded.contains(&i)
            && !m.drained()
            && (view.ignore_health
                || (m.healthy() && (view.ignore_ejection || now_ms >= m.ejected_until_ms())));
        let mut cand = Candidate {
            max_concurrent: m.max_concurrent(),
            priority: m.priority(),
            ..Candidate::new(i, weight(view, m, now_ms), m.in_flight())
        };
        if usable {
            if inputs.calls {
                cand.calls = m.calls();
            }
            if inputs.latency {
                (cand.latency_ms, cand.error_rate) = m.estimates().cost(now_ms, cand.in_flight);
            }
            if inputs.resources {
                if let Some(l) = m.load().filter(|l| fresh(l.at_ms, now_ms)) {
                    (cand.cpu, cand.mem) = (l.cpu, l.mem);
                }
            }
        }
        Slot { usable, cand }
    }));
    if inputs.calls {
        rejoin_floors(members, out, changes);
    }
}

/// The weight member `m` is given before slow start: override, else
/// dynamic, else configured.
pub fn base_weight<F: InstanceFacts>(m: &F) -> u32 {
    m.weight_override()
        .or_else(|| m.dynamic_weight())
        .unwrap_or_else(|| m.configured_weight())
}

/// The weight member `m` is given: [`base_weight`], then slow start.
pub fn weight<F: InstanceFacts>(view: &PoolView, m: &F, now_ms: u64) -> u32 {
    let w = base_weight(m);
    if view.slow_start_ms == 0 {
        return w;
    }
    slow_start::weight(
        w,
        view.slow_start_ms,
        m.up_since_ms(),
        m.ejected_until_ms(),
        now_ms,
    )
}

/// Holds the members out of service at their tier's in-service minimum, so
/// one returning from an outage rejoins level, not far behind.
fn rejoin_floors<F: InstanceFacts>(members: &[F], slots: &[Slot], changes: &mut Vec<Change>) {
    // One scan per tier that has a member out of service, not per member.
    let mut floors: [Option<Option<u64>>; Priority::ALL.len()] = [None; Priority::ALL.len()];
    for (slot, s) in slots.iter().enumerate().filter(|(_, s)| !s.usable) {
        let tier = s.cand.priority;
        let floor = *floors[tier as usize].get_or_insert_with(|| rejoin_floor(slots, tier));
        if let Some(floor) = floor {
            if members[slot].calls() < floor {
                changes.push(Change::RaiseCalls { slot, floor });
            }
        }
    }
}

/// Buffers reused from one decision to the next, so choosing allocates
/// nothing (keep one per thread, or per simulator).
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    /// The slots of the last pass.
    pub slots: Vec<Slot>,
    /// The changes of the last pass: apply them after [`choose`].
    pub changes: Vec<Change>,
    /// The selector's candidates.
    pub cands: Vec<Candidate>,
}

/// What [`choose`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub outcome: SelectOutcome,
    /// Whether the outcome was reached in panic mode. A caller that chooses
    /// again for the same request (it lost the race for the picked
    /// instance's slot) sets [`PoolView::ignore_health`] to this.
    pub ignored_health: bool,
    /// Whether the outcome was reached trying ejected instances that
    /// probes say are up, nothing else being usable. (Choosing again
    /// falls back the same way by itself.)
    pub ignored_ejection: bool,
    /// Why the pick went where it did (meaningful on `Picked`): `panic`
    /// and `ejected_fallback` from the view, `tier_spill` from the
    /// selector, else the algorithm's own.
    pub reason: PickReason,
}

/// Chooses a member: [`candidates`] then [`select`]. When that finds
/// nothing usable but some member left is only ejected or cooling down
/// (probes say it is up, it is not drained nor excluded), once more with
/// those usable; and when there is still nothing, the pool has `panic` and
/// nothing is excluded, once more ignoring health. The caller then applies
/// `scratch.changes` and, on `Picked(i)`, takes an in-flight slot on member
/// `i` (which can fail under a race, in which case it chooses again).
pub fn choose<F: InstanceFacts>(
    view: &PoolView,
    members: &[F],
    excluded: &[usize],
    now_ms: u64,
    balancer: &dyn Balancer,
    ctx: &mut PickContext<'_>,
    scratch: &mut Scratch,
) -> Choice {
    let mut view = *view;
    loop {
        candidates(
            &view,
            members,
            excluded,
            now_ms,
            &mut scratch.slots,
            &mut scratch.changes,
        );
        let outcome = select(&scratch.slots, balancer, ctx, &mut scratch.cands);
        if outcome == SelectOutcome::Down
            && !view.ignore_ejection
            && !view.ignore_health
            && ejected_but_up(members, excluded, now_ms)
        {
            // Every member left is ejected, and probes say some are up: try
            // those rather than refuse. (Nothing was usable, so no change
            // is lost.)
            debug_assert!(scratch.changes.is_empty());
            view.ignore_ejection = true;
            continue;
        }
        if outcome == SelectOutcome::Down
            && view.panic
            && excluded.is_empty()
            && !view.ignore_health
        {
            // Panic mode: every instance looks down; try them anyway. (With
            // nothing usable there was no floor, so no change is lost.)
            debug_assert!(scratch.changes.is_empty());
            view.ignore_health = true;
            continue;
        }
        let reason = if view.ignore_health {
            PickReason::Panic
        } else if view.ignore_ejection {
            PickReason::EjectedFallback
        } else {
            ctx.reason
        };
        return Choice {
            outcome,
            ignored_health: view.ignore_health,
            ignored_ejection: view.ignore_ejection && !view.ignore_health,
            reason,
        };
    }
}

/// Whether some member, not excluded, is out only because it is ejected or
/// cooling down: probes say it is up and it is not drained.
fn ejected_but_up<F: InstanceFacts>(members: &[F], excluded: &[usize], now_ms: u64) -> bool {
    members.iter().enumerate().any(|(i, m)| {
        now_ms < m.ejected_until_ms() && m.healthy() && !m.drained() && !excluded.contains(&i)
    })
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
