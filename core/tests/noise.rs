//! Noise sessions: IK to the relay, XXpsk3 pairing, frames over records, rekeying, and a
//! corrupted transport message that must not desynchronise the session.

use zerok_core::CoreRng;
use zerok_core::invite::{JoinRequest, ShortCode, SpakeExchange, pairing_prologue, qr_psk};
use zerok_core::keys::*;
use zerok_core::noise::*;
use zerok_core::wire::*;

struct Ik {
    device: Session,
    relay: Session,
    auth: ClientAuth,
    remote: NoisePublic,
}

fn ik(rng: &mut CoreRng, access: &NoiseKeypair, relay: &NoiseKeypair, ts: u64) -> Result<Ik, HandshakeError> {
    let group = GroupId::from_bytes([9; 32]);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(&group, ts, Intent::Member);
    let (init, m1) = IkInitiator::start(rng, access, &relay.public(), &prologue, &auth)?;
    let resp = IkResponder::read_first(rng, relay, &prologue, &m1)?;
    let got = resp.auth().clone();
    let remote = resp.remote_key();
    let (relay_session, m2) = resp.accept()?;
    let device = init.finish(&m2)?;
    Ok(Ik { device, relay: relay_session, auth: got, remote })
}

#[test]
fn ik_authenticates_both_sides_and_carries_the_payload() {
    let mut rng = CoreRng::from_seed([1; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let mut s = ik(&mut rng, &access, &relay, 1_000).unwrap();
    assert_eq!(s.remote, access.public());
    assert_eq!(s.auth.timestamp_ms, 1_000);
    assert_eq!(s.auth.group(), GroupId::from_bytes([9; 32]));
    assert_eq!(s.device.handshake_hash(), s.relay.handshake_hash());
    assert_eq!(s.device.remote_static(), Some(relay.public().0));
    let ct = s.device.encrypt(b"ping").unwrap();
    assert_eq!(s.relay.decrypt(&ct).unwrap(), b"ping");
}

#[test]
fn ik_with_the_wrong_relay_key_or_prologue_fails() {
    let mut rng = CoreRng::from_seed([2; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let impostor = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(&GroupId::from_bytes([0; 32]), 5, Intent::Pairing);
    let (_, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    assert_eq!(IkResponder::read_first(&mut rng, &impostor, &prologue, &m1).unwrap_err(), HandshakeError::Rejected);
    let other_endpoints = ik_prologue(&[1; 32], &[3; 32]);
    assert_eq!(IkResponder::read_first(&mut rng, &relay, &other_endpoints, &m1).unwrap_err(), HandshakeError::Rejected);
    // A relay answer from an impostor (it cannot have read message 1) is refused by the device.
    let (init, _) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    let (_, forged_m1) = IkInitiator::start(&mut rng, &access, &impostor.public(), &prologue, &auth).unwrap();
    let resp = IkResponder::read_first(&mut rng, &impostor, &prologue, &forged_m1).unwrap();
    let (_, forged_m2) = resp.accept().unwrap();
    assert_eq!(init.finish(&forged_m2).unwrap_err(), HandshakeError::Rejected);
}

#[test]
fn ik_first_message_garbage_and_truncation_are_rejected() {
    let mut rng = CoreRng::from_seed([3; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(
        &GroupId::from_bytes([4; 32]),
        5,
        Intent::CreateGroup { admission_token: Some(Bytes(b"tok".to_vec())) },
    );
    let (_, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    let ok = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap();
    assert_eq!(ok.auth(), &auth);
    for cut in 0..m1.len() {
        assert!(IkResponder::read_first(&mut rng, &relay, &prologue, &m1[..cut]).is_err());
    }
    for i in 0..m1.len() {
        let mut bad = m1.clone();
        bad[i] ^= 0x01;
        assert!(IkResponder::read_first(&mut rng, &relay, &prologue, &bad).is_err(), "flip at {i}");
    }
}

#[test]
fn replayed_first_message_is_caught_by_the_guard() {
    let mut rng = CoreRng::from_seed([4; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(&GroupId::from_bytes([4; 32]), 10_000, Intent::Member);
    let (_, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    let mut guard = ReplayGuard::new(100, 60_000);
    let first = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap();
    assert!(guard.check(&first.remote_key(), first.auth().timestamp_ms, 10_500));
    let replay = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap();
    assert!(!guard.check(&replay.remote_key(), replay.auth().timestamp_ms, 10_600));
}

#[test]
fn corrupted_transport_message_is_rejected_without_desynchronising() {
    let mut rng = CoreRng::from_seed([5; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let mut s = ik(&mut rng, &access, &relay, 1).unwrap();
    let good = s.device.encrypt(b"first").unwrap();
    let mut bad = good.clone();
    bad[3] ^= 0x80;
    assert_eq!(s.relay.decrypt(&bad), Err(SessionError::Rejected));
    assert_eq!(s.relay.decrypt(&good[..good.len() - 1]), Err(SessionError::Rejected));
    assert_eq!(s.relay.decrypt(&[]), Err(SessionError::Rejected));
    assert_eq!(s.relay.decrypt(&good).unwrap(), b"first");
    let next = s.device.encrypt(b"second").unwrap();
    assert_eq!(s.relay.decrypt(&next).unwrap(), b"second");
    assert_eq!(s.relay.decrypt(&good), Err(SessionError::Rejected), "a replayed record is refused");
}

#[test]
fn sessions_rekey_every_interval_in_lockstep() {
    let mut rng = CoreRng::from_seed([6; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let mut s = ik(&mut rng, &access, &relay, 1).unwrap();
    // Crossing the interval in both directions keeps both sides in step (the unit tests show
    // that a side which does not rekey can no longer decrypt).
    for i in 0..REKEY_INTERVAL + 10 {
        let ct = s.device.encrypt(&i.to_be_bytes()).unwrap();
        assert_eq!(s.relay.decrypt(&ct).unwrap(), i.to_be_bytes());
        let back = s.relay.encrypt(&i.to_le_bytes()).unwrap();
        assert_eq!(s.device.decrypt(&back).unwrap(), i.to_le_bytes());
    }
}

#[test]
fn frames_larger_than_a_record_span_several_in_any_chunking() {
    let mut rng = CoreRng::from_seed([7; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let s = ik(&mut rng, &access, &relay, 1).unwrap();
    let mut tx = Channel::new(s.device, &[]);
    let mut rx = Channel::new(s.relay, &[]);
    let big = Frame::Push(Push { push_id: [3; 16], envelope: Bytes((0..300_000u32).map(|i| i as u8).collect()) });
    let small = Frame::Ping(Ping { nonce: 9 });
    let mut wire = Vec::new();
    tx.send(&big, &mut wire).unwrap();
    tx.send(&small, &mut wire).unwrap();
    assert!(wire.len() > 300_000 + 5 * (RECORD_HEADER_LEN + TAG_LEN));
    let mut got = Vec::new();
    for chunk in wire.chunks(7_777) {
        rx.receive(chunk);
        while let Some(f) = rx.next_frame().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, vec![big, small]);
    assert_eq!(rx.buffered(), 0);
}

#[test]
fn a_tampered_record_stops_the_channel_with_an_error() {
    let mut rng = CoreRng::from_seed([8; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let s = ik(&mut rng, &access, &relay, 1).unwrap();
    let mut tx = Channel::new(s.device, &[]);
    let mut rx = Channel::new(s.relay, &[]);
    let mut wire = Vec::new();
    tx.send(&Frame::Ping(Ping { nonce: 1 }), &mut wire).unwrap();
    wire[4] ^= 1;
    rx.receive(&wire);
    assert!(matches!(rx.next_frame(), Err(ChannelError::Session(SessionError::Rejected))));
}

fn pair(
    rng: &mut CoreRng,
    joiner_psk: &PairingPsk,
    inviter_psk: &PairingPsk,
    pinned: Option<NoisePublic>,
) -> Result<(String, String, JoinRequest), HandshakeError> {
    let joiner_key = NoiseKeypair::generate(rng);
    let inviter_key = NoiseKeypair::generate(rng);
    let prologue = pairing_prologue(77);
    let pinned = pinned.map(|p| if p == NoisePublic([0; 32]) { inviter_key.public() } else { p });
    let mut j = PairingHandshake::new(rng, PairingRole::Joiner, &joiner_key, joiner_psk, &prologue, pinned)?;
    let mut i = PairingHandshake::new(rng, PairingRole::Inviter, &inviter_key, inviter_psk, &prologue, None)?;
    let m1 = j.write(&[])?;
    i.read(&m1)?;
    let m2 = i.write(&[])?;
    j.read(&m2)?;
    let request = JoinRequest::new(NoisePublic([5; 32]), DeviceId([6; 32]));
    let m3 = j.write(&request.to_bytes())?;
    let got = JoinRequest::from_bytes(&i.read(&m3)?).map_err(|_| HandshakeError::Malformed)?;
    let (_, remote_i, code_i) = i.finish()?;
    let (_, remote_j, code_j) = j.finish()?;
    assert_eq!(remote_i, joiner_key.public());
    assert_eq!(remote_j, inviter_key.public());
    Ok((code_i, code_j, got))
}

#[test]
fn short_code_pairing_agrees_on_a_confirmation_code() {
    let mut rng = CoreRng::from_seed([9; 32]);
    let code = ShortCode::generate(&mut rng);
    let (a, ma) = SpakeExchange::start(&code, &mut rng);
    let (b, mb) = SpakeExchange::start(&code, &mut rng);
    let (pa, pb) = (a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
    let (ci, cj, req) = pair(&mut rng, &pa, &pb, None).unwrap();
    assert_eq!(ci, cj);
    assert_eq!(ci.len(), 6);
    assert!(ci.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(req.access_key, [5; 32]);
}

#[test]
fn a_wrong_short_code_fails_the_handshake() {
    let mut rng = CoreRng::from_seed([10; 32]);
    let code = ShortCode::from_parts(77, 1234).unwrap();
    let wrong = ShortCode::from_parts(77, 1235).unwrap();
    let (a, ma) = SpakeExchange::start(&code, &mut rng);
    let (b, mb) = SpakeExchange::start(&wrong, &mut rng);
    let (pa, pb) = (a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
    assert_eq!(pair(&mut rng, &pa, &pb, None).unwrap_err(), HandshakeError::Rejected);
}

#[test]
fn qr_pairing_pins_the_inviter_key() {
    let mut rng = CoreRng::from_seed([11; 32]);
    let psk = qr_psk(&InviteSecret::random(&mut rng), 77);
    // NoisePublic([0; 32]) stands for "pin the real inviter key" in the helper.
    let (ci, cj, _) = pair(&mut rng, &psk, &psk, Some(NoisePublic([0; 32]))).unwrap();
    assert_eq!(ci, cj);
    assert_eq!(pair(&mut rng, &psk, &psk, Some(NoisePublic([8; 32]))).unwrap_err(), HandshakeError::PinnedKeyMismatch);
}

#[test]
fn handshake_messages_out_of_turn_are_refused() {
    let mut rng = CoreRng::from_seed([12; 32]);
    let key = NoiseKeypair::generate(&mut rng);
    let psk = PairingPsk::from_bytes([1; 32]);
    let mut i = PairingHandshake::new(&mut rng, PairingRole::Inviter, &key, &psk, b"p", None).unwrap();
    assert_eq!(i.write(&[]).unwrap_err(), HandshakeError::OutOfOrder);
    let j = PairingHandshake::new(&mut rng, PairingRole::Joiner, &key, &psk, b"p", None).unwrap();
    assert!(matches!(j.finish(), Err(HandshakeError::OutOfOrder)));
}
