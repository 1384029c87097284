//! Request classes in the simulator's admission queue (docs/SIMULATION.md,
//! "classes"): under twice the capacity, half interactive and half batch,
//! interactive p99 stays within 1.5× its unloaded value, batch keeps the
//! rest of the pool busy, and the gateway refuses only batch requests.

use fulcrum_policy::RequestClass::{Batch, Interactive, Normal};
use fulcrum_sim::scenarios::classes::{class, report, Setup, CLIENTS, QUEUE};

const RESERVED: Setup = Setup::Classes {
    reserve: 2,
    queue: QUEUE,
};

#[test]
fn interactive_keeps_its_latency_under_twice_the_capacity_and_only_batch_is_refused() {
    for seed in [1, 3, 4, 5] {
        let alone = report(seed, Setup::InteractiveAlone);
        let unloaded = class(&alone, Interactive).latency.p99;
        let r = report(seed, RESERVED);
        let (i, b) = (class(&r, Interactive), class(&r, Batch));
        assert!(
            i.latency.p99 <= 1.5 * unloaded,
            "seed {seed}: {} vs {unloaded}",
            i.latency.p99
        );
        assert_eq!(
            (i.rejected, class(&r, Normal).rejected),
            (0, 0),
            "seed {seed}"
        );
        assert!(
            b.rejected > 0 && b.shed > 0,
            "seed {seed}: the queue overflowed"
        );
        assert_eq!(r.rejected, b.rejected, "every refusal is a batch one");
        // Batch gets the rest: more work done than interactive alone.
        assert!(r.served as f64 > 1.5 * alone.served as f64, "seed {seed}");
    }
}

#[test]
fn a_burst_can_fill_a_short_queue_with_interactive_requests_and_a_longer_one_cannot() {
    // Seed 2: once in ~4,700 requests, 7 interactive requests at once
    // meet 6 batch ones in flight, and the 5th waiting finds the queue of
    // 4 full with no batch request to displace.
    let r = report(2, RESERVED);
    assert!(class(&r, Interactive).rejected >= 1);
    let long = report(
        2,
        Setup::Classes {
            reserve: 2,
            queue: CLIENTS,
        },
    );
    assert_eq!(long.rejected, 0, "a queue as long as the clients are many");
    assert!(class(&long, Batch).served > 0);
}

#[test]
fn without_the_reserve_batch_takes_every_slot_and_interactive_waits_for_it() {
    let reserved = report(1, RESERVED);
    let open = report(
        1,
        Setup::Classes {
            reserve: 0,
            queue: QUEUE,
        },
    );
    assert!(class(&open, Batch).served > class(&reserved, Batch).served);
    assert!(class(&open, Interactive).latency.p50 > class(&reserved, Interactive).latency.p50);
    assert!(class(&open, Interactive).served < class(&reserved, Interactive).served);
}

#[test]
fn without_classes_everyone_waits_alike() {
    let alone = report(1, Setup::InteractiveAlone);
    let none = report(1, Setup::NoClasses);
    let all = class(&none, Normal);
    assert_eq!(all.served, none.served);
    assert!(all.latency.p50 > 1.4 * class(&alone, Interactive).latency.p50);
    assert!(none
        .classes
        .iter()
        .all(|c| c.class == Normal || c.served == 0));
}
