//! Pairing through the relay, end to end in the simulated world without faults: short code,
//! QR invite, the confirmation code on both screens, wrong codes, single use and expiry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions"
)]

use zerok_core::Duration;
use zerok_core::client::{ClientEvent, Command, CommandError, PairingFailure, SyncStatus};
use zerok_core::invite::InviteError;
use zerok_transport_mock::check::Checker;
use zerok_transport_mock::{NetConfig, World};

/// Runs until no bytes, connects or store operations are in flight.
fn settle(world: &mut World, check: &mut Checker) {
    for _ in 0..200_000 {
        if world.quiet_network() || !world.advance(check) {
            return;
        }
    }
}

/// Runs until `device` joined or was told its pairing failed: a relay with no invite for the
/// code answers after a delay, with no bytes in flight meanwhile.
fn settle_join(world: &mut World, check: &mut Checker, device: usize) {
    for _ in 0..200_000 {
        let joined = world.devices[device].client.as_ref().is_some_and(|c| c.membership().is_some());
        if joined || !failures(world, device).is_empty() || !world.advance(check) {
            return;
        }
    }
}

fn group_with_invite(seed: u64) -> (World, Checker, String, String) {
    let mut world = World::new(seed, 3, NetConfig::default());
    let mut check = Checker::default();
    world.command(0, Command::CreateGroup { admission_token: None }, &mut check);
    settle(&mut world, &mut check);
    world.command(0, Command::CreateInvite, &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    let (short, qr) = world.devices[0]
        .events
        .iter()
        .find_map(|e| match e {
            ClientEvent::InviteReady { short_code, qr_text, .. } => Some((short_code.clone(), qr_text.clone())),
            _ => None,
        })
        .expect("invite ready");
    (world, check, short, qr)
}

fn confirmation(world: &World, device: usize) -> Option<String> {
    world.devices[device].events.iter().find_map(|e| match e {
        ClientEvent::PairingConfirmation { code } => Some(code.clone()),
        _ => None,
    })
}

fn failures(world: &World, device: usize) -> Vec<PairingFailure> {
    world.devices[device]
        .events
        .iter()
        .filter_map(|e| if let ClientEvent::PairingFailed { reason } = e { Some(*reason) } else { None })
        .collect()
}

#[test]
fn a_short_code_pairs_and_both_screens_show_the_same_confirmation() {
    let (mut world, mut check, short, _) = group_with_invite(1);
    world.command(1, Command::JoinInvite(short.to_lowercase().replace('-', "")), &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    let joined = world.devices[1].client.as_ref().unwrap();
    assert!(joined.membership().is_some());
    assert_eq!(joined.status(), SyncStatus::Synced);
    assert_eq!(confirmation(&world, 0), confirmation(&world, 1));
    assert!(confirmation(&world, 0).is_some_and(|c| c.len() == 6));
    assert!(world.devices[0].events.iter().any(|e| matches!(e, ClientEvent::DeviceAdded { .. })));

    // The new device syncs for real: a push from it reaches the creator.
    world.command(1, Command::Push(b"hi from the new device".to_vec()), &mut check);
    settle(&mut world, &mut check);
    assert!(world.devices[0].store.inbox.iter().any(|b| b.payload == b"hi from the new device"));

    // Single use: the same code cannot be used again. The relay answers it as it answers any
    // code it holds no invite for: a wrong code.
    world.command(2, Command::JoinInvite(short), &mut check).unwrap().unwrap();
    settle_join(&mut world, &mut check, 2);
    assert!(world.devices[2].client.as_ref().unwrap().membership().is_none());
    assert_eq!(failures(&world, 2), vec![PairingFailure::WrongCode]);
}

#[test]
fn a_qr_invite_pairs_with_the_inviter_key_pinned() {
    let (mut world, mut check, _, qr) = group_with_invite(2);
    world.command(2, Command::JoinInvite(qr), &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    assert!(world.devices[2].client.as_ref().unwrap().membership().is_some());
    assert_eq!(confirmation(&world, 0), confirmation(&world, 2));
}

#[test]
fn three_wrong_codes_kill_the_invite() {
    let (mut world, mut check, short, _) = group_with_invite(3);
    let slot_part: String = short.chars().take(4).collect();
    for attempt in 0..3 {
        // Same slot (first 4 characters carry 20 bits of slot), other secret, valid checksum.
        let wrong = wrong_code_for_slot(&short, attempt);
        assert!(wrong.starts_with(&slot_part));
        world.command(1, Command::JoinInvite(wrong), &mut check).unwrap().unwrap();
        settle(&mut world, &mut check);
        assert!(world.devices[1].client.as_ref().unwrap().membership().is_none(), "attempt {attempt}");
    }
    assert!(world.devices[0].events.iter().any(|e| matches!(e, ClientEvent::InviteClosed)));
    let told_wrong = world.devices[1]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::PairingFailed { reason: PairingFailure::WrongCode }))
        .count();
    assert_eq!(told_wrong, 3, "every wrong attempt, the last included, is reported as a wrong code");
    world.command(1, Command::JoinInvite(short), &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    assert!(world.devices[1].client.as_ref().unwrap().membership().is_none(), "the right code is too late");
}

#[test]
fn expired_and_mistyped_invites_are_refused_locally() {
    let (mut world, mut check, short, qr) = group_with_invite(4);
    let mut typo: Vec<char> = short.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let refused = world.command(1, Command::JoinInvite(typo), &mut check).unwrap();
    assert_eq!(refused, Err(CommandError::Invite(InviteError::Checksum)));
    world.now_us += Duration::from_secs(601).as_micros();
    let refused = world.command(1, Command::JoinInvite(qr), &mut check).unwrap();
    assert_eq!(refused, Err(CommandError::Invite(InviteError::Expired)));
}

/// A code for the same slot with a different secret (and a valid check character).
fn wrong_code_for_slot(short: &str, n: u64) -> String {
    let code = zerok_core::invite::ShortCode::parse(short).unwrap();
    for secret in (1 + n * 1000).. {
        if let Some(other) = zerok_core::invite::ShortCode::from_parts(code.slot(), secret)
            && other != code
        {
            return other.display();
        }
    }
    unreachable!()
}

/// The pairing events a device saw, by kind.
fn pairing_events(world: &World, device: usize) -> Vec<String> {
    world.devices[device]
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::PairingConfirmation { .. } => Some("confirmation".to_owned()),
            ClientEvent::PairingFailed { reason } => Some(format!("failed {reason:?}")),
            _ => None,
        })
        .collect()
}

/// Issue 14: a scan told live slots from empty ones (`NotFound` at once for an empty one). A
/// joiner now meets the same answers for a wrong code on a live invite and for a code on a
/// slot that holds none, and the live invite loses only the attempt really made on it.
#[test]
fn a_code_for_no_invite_fails_exactly_like_a_wrong_code() {
    let (mut world, mut check, short, _) = group_with_invite(5);
    let live = zerok_core::invite::ShortCode::parse(&short).unwrap();
    world.command(1, Command::JoinInvite(wrong_code_for_slot(&short, 0)), &mut check).unwrap().unwrap();
    settle_join(&mut world, &mut check, 1);
    let empty_slot = (live.slot() + 1) % (1 << zerok_core::invite::SLOT_BITS);
    let empty = zerok_core::invite::ShortCode::from_parts(empty_slot, 99).unwrap().display();
    world.command(2, Command::JoinInvite(empty), &mut check).unwrap().unwrap();
    settle_join(&mut world, &mut check, 2);
    assert_eq!(pairing_events(&world, 1), ["confirmation", "failed WrongCode"]);
    assert_eq!(pairing_events(&world, 2), pairing_events(&world, 1));
    world.command(2, Command::JoinInvite(short), &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    assert!(world.devices[2].client.as_ref().unwrap().membership().is_some(), "the invite still works");
}

/// A QR code carries the inviter's key: a used one is told apart from a wrong code.
#[test]
fn a_used_qr_invite_is_unavailable() {
    let (mut world, mut check, _, qr) = group_with_invite(6);
    world.command(2, Command::JoinInvite(qr.clone()), &mut check).unwrap().unwrap();
    settle(&mut world, &mut check);
    assert!(world.devices[2].client.as_ref().unwrap().membership().is_some());
    world.command(1, Command::JoinInvite(qr), &mut check).unwrap().unwrap();
    settle_join(&mut world, &mut check, 1);
    assert_eq!(failures(&world, 1), vec![PairingFailure::InviteUnavailable]);
}
