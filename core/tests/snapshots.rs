//! Wire formats pinned byte for byte: every frame type, the QR payload, the short code, one
//! IK and one XXpsk3 transcript from fixed seeds, and one sealed envelope. A change here is a
//! wire change: bump the version and update docs/PROTOCOL.md.

mod support;

use support::{hex, sample_frames};
use zerok_core::CoreRng;
use zerok_core::envelope::*;
use zerok_core::invite::*;
use zerok_core::keys::*;
use zerok_core::noise::*;
use zerok_core::wire::*;

#[test]
fn every_frame_type() {
    for frame in sample_frames() {
        let name = format!("frame_{:02}_{:?}", frame.frame_type() as u8, frame.frame_type());
        insta::assert_snapshot!(name, hex(&frame.to_bytes().unwrap()));
    }
}

fn fixed_qr() -> QrInvite {
    QrInvite {
        slot: 0x1_2345,
        secret: InviteSecret::from_bytes([0x5A; 32]),
        inviter_key: NoisePublic([0x11; 32]),
        inviter_endpoint: [0x22; 32],
        relay_endpoint: [0x33; 32],
        relay_key: NoisePublic([0x44; 32]),
        relay_addrs: vec!["127.0.0.1:4433".into()],
        expires_at_ms: 1_700_000_600_000,
    }
}

#[test]
fn qr_payload() {
    let qr = fixed_qr();
    insta::assert_snapshot!("qr_payload_bytes", hex(&qr.to_bytes().unwrap()));
    insta::assert_snapshot!("qr_payload_text", qr.to_text().unwrap().as_str());
}

#[test]
fn short_code() {
    let code = ShortCode::from_parts(0x1_2345, 0x12_3456_789A_BCDE).unwrap();
    insta::assert_snapshot!("short_code", code.display());
    let zero = ShortCode::from_parts(0, 0).unwrap();
    assert_eq!(zero.display(), "0000-0000-0000-0000");
}

#[test]
fn ik_transcript() {
    let mut rng = CoreRng::from_seed([0x01; 32]);
    let access = NoiseKeypair::from_secret(NoiseSecret::from_bytes([0x0A; 32]));
    let relay = NoiseKeypair::from_secret(NoiseSecret::from_bytes([0x0B; 32]));
    let prologue = ik_prologue(&[0x0C; 32], &[0x0D; 32]);
    let auth = ClientAuth::new(&GroupId::from_bytes([0x0E; 32]), 1_700_000_000_000, Intent::Member);
    let (init, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    let (relay_session, m2) = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap().accept().unwrap();
    let device = init.finish(&m2).unwrap();
    let mut tx = Channel::new(device, &[]);
    let mut first = Vec::new();
    tx.send(&Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }), &mut first).unwrap();
    let mut rx = Channel::new(relay_session, &[]);
    rx.receive(&first);
    assert!(matches!(rx.next_frame().unwrap(), Some(Frame::Hello(_))));
    let transcript = format!(
        "prologue {}\nmsg1 {}\nmsg2 {}\nhash {}\nhello_record {}\n",
        hex(&prologue),
        hex(&m1),
        hex(&m2),
        hex(tx.session().handshake_hash()),
        hex(&first)
    );
    insta::assert_snapshot!("ik_transcript", transcript);
}

#[test]
fn xxpsk3_short_code_transcript() {
    let mut rng = CoreRng::from_seed([0x02; 32]);
    let code = ShortCode::from_parts(0x1_2345, 0x12_3456_789A_BCDE).unwrap();
    let (sj, spake_j) = SpakeExchange::start(&code, &mut rng);
    let (si, spake_i) = SpakeExchange::start(&code, &mut rng);
    let psk_j = sj.finish(&spake_i).unwrap();
    let psk_i = si.finish(&spake_j).unwrap();
    let joiner = NoiseKeypair::from_secret(NoiseSecret::from_bytes([0x1A; 32]));
    let inviter = NoiseKeypair::from_secret(NoiseSecret::from_bytes([0x1B; 32]));
    let prologue = pairing_prologue(code.slot());
    let mut j = PairingHandshake::new(&mut rng, PairingRole::Joiner, &joiner, &psk_j, &prologue, None).unwrap();
    let mut i = PairingHandshake::new(&mut rng, PairingRole::Inviter, &inviter, &psk_i, &prologue, None).unwrap();
    let m1 = j.write(&[]).unwrap();
    i.read(&m1).unwrap();
    let m2 = i.write(&[]).unwrap();
    j.read(&m2).unwrap();
    let req = JoinRequest::new(NoisePublic([0x1C; 32]), DeviceId([0x1D; 32]));
    let m3 = j.write(&req.to_bytes()).unwrap();
    assert_eq!(JoinRequest::from_bytes(&i.read(&m3).unwrap()).unwrap(), req);
    let (mut inviter_session, _, code_i) = i.finish().unwrap();
    let (_, _, code_j) = j.finish().unwrap();
    assert_eq!(code_i, code_j);
    let welcome = GroupWelcome {
        group_id: GroupId::from_bytes([0x1E; 32]),
        epoch: 0,
        epoch_secret: EpochSecret::from_bytes([0x1F; 32]),
        relay_endpoint: [0x20; 32],
        relay_key: NoisePublic([0x21; 32]),
        relay_addrs: vec!["127.0.0.1:4433".into()],
    };
    let welcome_msg = inviter_session.encrypt(&welcome.to_bytes()).unwrap();
    let transcript = format!(
        "spake_joiner {}\nspake_inviter {}\nmsg1 {}\nmsg2 {}\nmsg3 {}\nconfirmation {}\nwelcome {}\n",
        hex(&spake_j),
        hex(&spake_i),
        hex(&m1),
        hex(&m2),
        hex(&m3),
        code_i,
        hex(&welcome_msg)
    );
    insta::assert_snapshot!("xxpsk3_transcript", transcript);
}

#[test]
fn sealed_envelope() {
    let mut rng = CoreRng::from_seed([0x03; 32]);
    let cipher = BlobCipher::new(&GroupId::from_bytes([0x31; 32]), 0, &EpochSecret::from_bytes([0x32; 32]));
    let signer = DeviceSigningKey::from_bytes(&[0x33; 32]);
    let e = cipher
        .seal(&signer, ChainLink { seq: 1, prev_hash: [0; 32] }, BlobKind::Data, b"hello, 0k-sync", &mut rng)
        .unwrap()
        .envelope;
    assert_eq!(e.len(), MIN_ENVELOPE);
    insta::assert_snapshot!("sealed_envelope", hex(&e));
}
