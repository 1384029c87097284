//! Eligibility and priority tiers around a balancing algorithm.
//!
//! Health is kept out of the algorithms (as in pingora): the caller
//! describes each instance as a [`Slot`] — may it be used at all, how busy
//! is it — and [`select`] decides which priority tier is in play, filters
//! it down to the instances below `max_concurrent`, and only then asks the
//! [`Balancer`] to choose.
//!
//! Tiers: traffic goes to the highest tier (`high`, `normal`, `low`) with an
//! eligible instance; a tier whose instances are all down **or** all at
//! `max_concurrent` spills to the next. `backup` instances are used only when
//! every non-backup instance is down (not merely busy).

use crate::candidate::{Balancer, Candidate, PickContext};
use crate::reason::PickReason;
// Re-exported so the old paths `select::{Priority, Slot}` keep working.
pub use crate::priority::Priority;
pub use crate::slot::Slot;

/// What the selector decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectOutcome {
    /// The index (slot) of the chosen instance.
    Picked(usize),
    /// Some instance is usable but every usable one is at `max_concurrent`:
    /// the request may wait for a slot.
    Busy,
    /// No instance is usable at all.
    Down,
}

/// Chooses an instance among `slots`, tier by tier. `scratch` is reused
/// between calls to avoid an allocation per request.
pub fn select(
    slots: &[Slot],
    balancer: &dyn Balancer,
    ctx: &mut PickContext<'_>,
    scratch: &mut Vec<Candidate>,
) -> SelectOutcome {
    let mut any_usable_primary = false;
    // Whether a better tier than the current one has any member at all:
    // a pick below it is a spill.
    let mut better_tier_present = false;
    ctx.reason = PickReason::Algorithm;
    for tier in Priority::ALL {
        if tier == Priority::Backup && any_usable_primary {
            // Backups serve only when every other instance is down.
            return SelectOutcome::Busy;
        }
        scratch.clear();
        let mut usable_in_tier = false;
        let mut present_in_tier = false;
        for (slot, s) in slots.iter().enumerate() {
            if s.cand.priority != tier {
                continue;
            }
            present_in_tier = true;
            if !s.usable {
                continue;
            }
            usable_in_tier = true;
            if s.has_room() {
                scratch.push(Candidate {
                    slot,
                    weight: s.cand.weight.max(1),
                    ..s.cand
                });
            }
        }
        if !scratch.is_empty() {
            let i = balancer.pick(scratch, ctx);
            if better_tier_present {
                ctx.reason = PickReason::TierSpill;
            }
            return SelectOutcome::Picked(scratch[i].slot);
        }
        better_tier_present |= present_in_tier;
        if tier == Priority::Backup && usable_in_tier {
            return SelectOutcome::Busy;
        }
        any_usable_primary |= usable_in_tier;
    }
    SelectOutcome::Down
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::registry::{build, Algorithm};
    use proptest::prelude::*;

    fn slot(priority: Priority, usable: bool, in_flight: u32, max: Option<u32>) -> Slot {
        let cand = Candidate {
            priority,
            max_concurrent: max,
            ..Candidate::new(0, 1, in_flight)
        };
        Slot { usable, cand }
    }

    fn members(n: usize) -> Vec<(u64, u32)> {
        (0..n as u64).map(|i| (i, 1)).collect()
    }

    fn pick(slots: &[Slot]) -> SelectOutcome {
        let b = build(Algorithm::RoundRobin, &members(slots.len()));
        let mut rng = fastrand::Rng::with_seed(1);
        select(
            slots,
            b.as_ref(),
            &mut PickContext::new(&mut rng),
            &mut Vec::new(),
        )
    }

    #[test]
    fn high_tier_wins_while_it_has_room() {
        let s = [
            slot(Priority::Low, true, 0, None),
            slot(Priority::High, true, 1, Some(2)),
        ];
        assert_eq!(pick(&s), SelectOutcome::Picked(1));
    }

    #[test]
    fn full_high_tier_spills_to_low() {
        let s = [
            slot(Priority::Low, true, 0, None),
            slot(Priority::High, true, 2, Some(2)),
        ];
        assert_eq!(pick(&s), SelectOutcome::Picked(0));
    }

    #[test]
    fn down_high_tier_spills_to_normal() {
        let s = [
            slot(Priority::High, false, 0, None),
            slot(Priority::Normal, true, 0, None),
        ];
        assert_eq!(pick(&s), SelectOutcome::Picked(1));
    }

    fn reason(slots: &[Slot]) -> (SelectOutcome, PickReason) {
        let b = build(Algorithm::RoundRobin, &members(slots.len()));
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ctx = PickContext::new(&mut rng);
        let out = select(slots, b.as_ref(), &mut ctx, &mut Vec::new());
        (out, ctx.reason)
    }

    #[test]
    fn a_pick_below_a_present_better_tier_is_a_spill() {
        let full_high = [
            slot(Priority::Low, true, 0, None),
            slot(Priority::High, true, 2, Some(2)),
        ];
        assert_eq!(
            reason(&full_high),
            (SelectOutcome::Picked(0), PickReason::TierSpill)
        );
        let down_normal = [
            slot(Priority::Normal, false, 0, None),
            slot(Priority::Backup, true, 0, None),
        ];
        assert_eq!(
            reason(&down_normal),
            (SelectOutcome::Picked(1), PickReason::TierSpill)
        );
        // Only one tier present: the algorithm's own choice.
        let one_tier = [slot(Priority::Low, true, 0, None)];
        assert_eq!(
            reason(&one_tier),
            (SelectOutcome::Picked(0), PickReason::Algorithm)
        );
    }

    #[test]
    fn backup_is_not_used_when_primaries_are_only_busy() {
        let s = [
            slot(Priority::Normal, true, 1, Some(1)),
            slot(Priority::Backup, true, 0, None),
        ];
        assert_eq!(pick(&s), SelectOutcome::Busy);
    }

    #[test]
    fn backup_is_used_when_primaries_are_down() {
        let s = [
            slot(Priority::Normal, false, 0, None),
            slot(Priority::Backup, true, 0, None),
        ];
        assert_eq!(pick(&s), SelectOutcome::Picked(1));
    }

    #[test]
    fn nothing_usable_is_down_and_all_full_is_busy() {
        assert_eq!(
            pick(&[slot(Priority::Normal, false, 0, None)]),
            SelectOutcome::Down
        );
        assert_eq!(pick(&[]), SelectOutcome::Down);
        assert_eq!(
            pick(&[slot(Priority::Normal, true, 3, Some(3))]),
            SelectOutcome::Busy
        );
    }

    fn arb_slot() -> impl Strategy<Value = Slot> {
        (
            0usize..4,
            any::<bool>(),
            0u32..6,
            proptest::option::of(1u32..5),
            1u32..5,
        )
            .prop_map(|(p, usable, in_flight, max, weight)| Slot {
                usable,
                cand: Candidate {
                    priority: [
                        Priority::High,
                        Priority::Normal,
                        Priority::Low,
                        Priority::Backup,
                    ][p],
                    max_concurrent: max,
                    ..Candidate::new(0, weight, in_flight)
                },
            })
    }

    proptest! {
        /// For every algorithm: the pick is usable and has room (so
        /// max_concurrent is never exceeded), no better tier had room,
        /// backups only serve when every primary is down.
        #[test]
        fn the_pick_is_usable_has_room_and_no_better_tier_had_room(
            slots in proptest::collection::vec(arb_slot(), 0..10),
            alg in 0usize..9,
            key in proptest::option::of(any::<u64>()),
        ) {
            let alg = Algorithm::ALL[alg];
            let b = build(alg, &members(slots.len()));
            let mut rng = fastrand::Rng::with_seed(9);
            let mut ctx = PickContext::keyed(&mut rng, key);
            let out = select(&slots, b.as_ref(), &mut ctx, &mut Vec::new());
            let eligible = |s: &Slot| s.usable && s.has_room();
            match out {
                SelectOutcome::Picked(i) => {
                    let p = &slots[i];
                    prop_assert!(eligible(p));
                    for s in &slots {
                        if s.cand.priority < p.cand.priority {
                            prop_assert!(!eligible(s), "a better tier had room");
                        }
                    }
                    if p.cand.priority == Priority::Backup {
                        prop_assert!(slots.iter().all(|s| s.cand.priority == Priority::Backup || !s.usable));
                    }
                }
                SelectOutcome::Busy => {
                    prop_assert!(slots.iter().any(|s| s.usable));
                }
                SelectOutcome::Down => prop_assert!(slots.iter().all(|s| !s.usable)),
            }
        }
    }
}
