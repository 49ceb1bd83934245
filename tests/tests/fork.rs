//! A relay that forks its log into two worlds is caught by the log commitment: a device that
//! saw one history and is later served another reports `Forked`, reads the log again from the
//! start, pushes its own blobs again, and every device ends with every blob.

#![allow(clippy::indexing_slicing, reason = "test helpers outside #[test] functions")]

use zerok_core::client::{ClientEvent, Command};
use zerok_transport_mock::adversary::Adversary;
use zerok_transport_mock::check::Checker;
use zerok_transport_mock::scenario::converge;
use zerok_transport_mock::{NetConfig, World};

const STEPS: u64 = 400_000;

fn push_from(world: &mut World, check: &mut Checker, device: usize, n: usize) {
    for i in 0..n {
        let payload = format!("device {device} note {i} at {}", world.steps).into_bytes();
        if let Some(Ok(Some(push_id))) = world.command(device, Command::Push(payload.clone()), check) {
            check.pushed(device, push_id, &payload);
        }
    }
}

fn reports(world: &World, device: usize) -> (usize, usize) {
    let events = &world.devices[device].events;
    let forks = events.iter().filter(|e| matches!(e, ClientEvent::Forked { .. })).count();
    let rollbacks = events.iter().filter(|e| matches!(e, ClientEvent::Rollback { .. })).count();
    (forks, rollbacks)
}

#[test]
fn a_device_shown_another_world_reports_the_fork_and_everything_converges() {
    let mut world = World::new(7, 3, NetConfig::default());
    let mut check = Checker::default();
    check.adversarial = true;
    world.adversary = Some(Adversary::new(0, &mut world.rng));
    world.command(0, Command::CreateGroup { admission_token: None }, &mut check);
    converge(&mut world, &mut check, STEPS, 2, true).expect("group formed");

    for d in 0..3 {
        push_from(&mut world, &mut check, d, 5);
    }
    converge(&mut world, &mut check, STEPS, 2, true).expect("first round synced");
    world.snapshot_relay();
    for d in 0..3 {
        push_from(&mut world, &mut check, d, 5);
    }
    converge(&mut world, &mut check, STEPS, 2, true).expect("second round synced");
    let seen = world.devices[2].store.state.cursor;
    assert!(seen >= 30, "device 2 saw both rounds (cursor {seen})");

    // World B: the relay goes back to the snapshot for devices 0 and 1, while device 2 is away
    // holding world A. They notice the rollback and push their lost blobs again, and more, so
    // world B's head passes everything device 2 has seen.
    check.history_rewritten(&world);
    assert!(world.fork_relay(&[2], &mut check));
    for _ in 0..2_000 {
        world.advance(&mut check);
    }
    push_from(&mut world, &mut check, 0, 20);
    for _ in 0..20_000 {
        if !world.advance(&mut check) || world.store.groups.values().all(|g| g.head > seen + 5) {
            break;
        }
    }
    assert!(world.store.groups.values().all(|g| g.head > seen), "world B outgrew what device 2 saw");
    assert_eq!(reports(&world, 2), (0, 0), "device 2 has not been back yet");

    // Device 2 comes back: the relay's head is above anything it saw, so only the log
    // commitment can tell that this is not the history it was shown.
    world.devices[2].partitioned = false;
    world.command(2, Command::SyncNow, &mut check);
    converge(&mut world, &mut check, STEPS, 2, true).expect("converged after the fork");
    let (forks, rollbacks) = reports(&world, 2);
    assert!(forks >= 1, "device 2 reported the fork");
    assert_eq!(rollbacks, 0, "device 2 was never shown a lower head");
    for d in 0..2 {
        assert!(reports(&world, d).1 >= 1, "device {d} saw the rollback to the snapshot");
    }

    // Nothing acknowledged in either world is lost: every device has every other device's blobs.
    for d in 0..3 {
        let inbox: std::collections::BTreeSet<[u8; 16]> =
            world.devices[d].store.inbox.iter().map(|b| b.push_id).collect();
        let missing = check.pushes.iter().filter(|(id, (_, from))| *from != d && !inbox.contains(*id)).count();
        assert_eq!(missing, 0, "device {d} misses {missing} blobs");
    }
    check.check_converged(&world);
    assert_eq!(check.first_violation(), None);
}
