//! Each planted bug must be caught by the simulation's checks within 100 seeds: proof that the
//! checks can fail. Run with `cargo test -p zerok-tests --features planted-bugs --test planted_bugs`.
#![cfg(feature = "planted-bugs")]
#![allow(clippy::panic, reason = "a test helper reports failure by panicking")]

use zerok_core::bugs::PlantedBugs;
use zerok_transport_mock::scenario::{Scenario, run};

fn caught_within_100_seeds(bugs: PlantedBugs) -> (u64, String) {
    // An honest relay keeps each sender's blobs in sequence order, so only a dishonest one
    // (the adversarial sweep's, whose seeds pass without bugs) shows a device a gap.
    let adversary_percent = if bugs.accept_seq_gap { 30 } else { 0 };
    // Only a device that joins after a prune needs a trust point: every seed runs retention.
    let retention_one_in = if bugs.no_trust_points { 1 } else { Scenario::default().retention_one_in };
    // A relay's damaged store needs repairing, and a rewritten log checking: every seed has one.
    let damage_one_in = if bugs.no_store_repair || bugs.synced_before_checked || bugs.no_reregistration {
        1
    } else {
        Scenario::default().damage_one_in
    };
    // Only relays over a shared store look groups up.
    let relays = if bugs.no_shared_lookup { 3 } else { 1 };
    let damage_one_in = if relays > 1 { 0 } else { damage_one_in };
    let scenario = Scenario {
        steps: 2_000,
        adversary_percent,
        retention_one_in,
        damage_one_in,
        relays,
        bugs,
        ..Scenario::default()
    };
    for seed in 0..100 {
        if let Err(f) = run(seed, &scenario) {
            return (seed, f.violation.0);
        }
    }
    panic!("{bugs:?} was not caught within 100 seeds");
}

macro_rules! planted {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let (seed, violation) = caught_within_100_seeds(PlantedBugs { $name: true, ..PlantedBugs::default() });
            eprintln!("{}: caught at seed {seed}: {violation}", stringify!($name));
        }
    )*};
}

planted!(
    ack_before_durable,
    skip_dedupe,
    cursor_reuse_after_restart,
    drop_outbox_on_crash,
    accept_seq_gap,
    reseal_on_retry,
    no_trust_points,
    no_store_repair,
    synced_before_checked,
    no_reregistration,
    no_shared_lookup
);

#[test]
fn without_bugs_the_same_seeds_pass() {
    let scenario = Scenario::default();
    for seed in 0..20 {
        run(seed, &scenario).unwrap_or_else(|f| panic!("{f}"));
    }
}
