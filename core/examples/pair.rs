//! Two in-memory devices pair with a short code and exchange a sealed blob through an
//! in-memory relay, over real Noise sessions and real frames — no network, no clock.
//!
//! `cargo run -p zerok-core --example pair`
#![allow(clippy::print_stdout, reason = "an example that narrates what it does")]

use zerok_core::CoreRng;
use zerok_core::envelope::{BlobCipher, BlobKind, ChainLink};
use zerok_core::invite::*;
use zerok_core::keys::*;
use zerok_core::noise::*;
use zerok_core::wire::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A device's connection to the relay: a Noise IK session with the frames flowing through.
fn connect(
    rng: &mut CoreRng,
    access: &NoiseKeypair,
    relay: &NoiseKeypair,
    group: &GroupId,
    intent: Intent,
) -> Result<(Channel, Channel)> {
    let prologue = ik_prologue(&access.public().0, &relay.public().0);
    let auth = ClientAuth::new(group, 1_700_000_000_000, intent);
    let (init, m1) = IkInitiator::start(rng, access, &relay.public(), &prologue, &auth)?;
    let (relay_side, m2) = IkResponder::read_first(rng, relay, &prologue, &m1)?.accept()?;
    Ok((Channel::new(init.finish(&m2)?, &[]), Channel::new(relay_side, &[])))
}

/// Sends `frame` from one end of a connection and returns what the other end decodes.
fn exchange(from: &mut Channel, to: &mut Channel, frame: &Frame) -> Result<Frame> {
    let mut wire = Vec::new();
    from.send(frame, &mut wire)?;
    to.receive(&wire);
    Ok(to.next_frame()?.ok_or("no frame")?)
}

fn main() -> Result<()> {
    let mut rng = CoreRng::from_seed(*b"0k-sync example seed, fixed!!!!!");
    let relay = NoiseKeypair::generate(&mut rng);
    let relay_addr = "127.0.0.1:4433".to_string();

    // Alice creates a group and an invite.
    let group = GroupId::random(&mut rng);
    let epoch_secret = EpochSecret::random(&mut rng);
    let alice_signer = DeviceSigningKey::generate(&mut rng);
    let alice_access = NoiseKeypair::generate(&mut rng);
    let alice_pairing_key = NoiseKeypair::generate(&mut rng);
    let code = ShortCode::generate(&mut rng);
    println!("alice: created group {}…, invite code {}", group.short_hex(), code.display());

    // Bob types the code (lower case, no hyphens: both fine) and pairs through the relay slot.
    let typed = code.display().replace('-', "").to_lowercase();
    let InviteCode::Short(bob_code) = InviteCode::parse(&typed, 0)? else {
        return Err("not a short code".into());
    };
    let bob_pairing_key = NoiseKeypair::generate(&mut rng);
    let bob_access = NoiseKeypair::generate(&mut rng);
    let bob_signer = DeviceSigningKey::generate(&mut rng);
    let (bob_spake, bob_msg) = SpakeExchange::start(&bob_code, &mut rng);
    let (alice_spake, alice_msg) = SpakeExchange::start(&code, &mut rng);
    let bob_psk = bob_spake.finish(&alice_msg)?;
    let alice_psk = alice_spake.finish(&bob_msg)?;
    let prologue = pairing_prologue(code.slot());
    let mut bob_hs = PairingHandshake::new(&mut rng, PairingRole::Joiner, &bob_pairing_key, &bob_psk, &prologue, None)?;
    let mut alice_hs =
        PairingHandshake::new(&mut rng, PairingRole::Inviter, &alice_pairing_key, &alice_psk, &prologue, None)?;
    alice_hs.read(&bob_hs.write(&[])?)?;
    bob_hs.read(&alice_hs.write(&[])?)?;
    let request = JoinRequest::new(bob_access.public(), bob_signer.device_id());
    let received = JoinRequest::from_bytes(&alice_hs.read(&bob_hs.write(&request.to_bytes())?)?)?;
    let (mut alice_pairing, _, alice_confirm) = alice_hs.finish()?;
    let (mut bob_pairing, _, bob_confirm) = bob_hs.finish()?;
    println!("pairing: confirmation codes alice={alice_confirm} bob={bob_confirm}");
    let welcome = GroupWelcome {
        group_id: group.clone(),
        epoch: 0,
        epoch_secret: epoch_secret.clone(),
        relay_endpoint: relay.public().0,
        relay_key: relay.public(),
        relay_addrs: vec![relay_addr],
    };
    let bob_welcome = GroupWelcome::from_bytes(&bob_pairing.decrypt(&alice_pairing.encrypt(&welcome.to_bytes())?)?)?;
    println!(
        "bob: joined group {}… via {:?}, access key registered by alice: {}",
        bob_welcome.group_id.short_hex(),
        bob_welcome.relay_addrs,
        received.access_key == bob_access.public().0
    );

    // Alice seals a blob and pushes it; the relay stores ciphertext only.
    let (mut alice_conn, mut relay_from_alice) =
        connect(&mut rng, &alice_access, &relay, &group, Intent::CreateGroup { admission_token: None })?;
    let cipher = BlobCipher::new(&group, 0, &epoch_secret);
    let sealed = cipher.seal(
        &alice_signer,
        ChainLink { seq: 1, prev_hash: [0; 32] },
        BlobKind::Data,
        b"{\"note\":\"buy milk\"}",
        &mut rng,
    )?;
    let push = Frame::Push(Push { push_id: rng.bytes(), envelope: Bytes(sealed.envelope.clone()) });
    let Frame::Push(stored) = exchange(&mut alice_conn, &mut relay_from_alice, &push)? else {
        return Err("expected Push".into());
    };
    let mut blob = StoredBlob {
        cursor: 1,
        push_id: stored.push_id,
        stored_at_ms: 1_700_000_000_001,
        envelope: stored.envelope,
        chain: [0; 32],
    };
    let genesis = zerok_core::log::genesis(group.expose());
    blob.chain = zerok_core::log::link(&genesis, &blob);
    let relay_store = [blob];
    exchange(&mut relay_from_alice, &mut alice_conn, &Frame::PushAck(PushAck { push_id: stored.push_id, cursor: 1 }))?;
    println!("alice: pushed {} bytes of ciphertext, acknowledged at cursor 1", sealed.envelope.len());

    // Bob connects with his own access key and pulls.
    let (mut bob_conn, mut relay_from_bob) =
        connect(&mut rng, &bob_access, &relay, &bob_welcome.group_id, Intent::Member)?;
    exchange(&mut bob_conn, &mut relay_from_bob, &Frame::Pull(Pull { after: 0, limit: 100 }))?;
    let page = Frame::Blobs(Blobs {
        after: 0,
        prev_chain: genesis,
        blobs: relay_store.to_vec(),
        has_more: false,
        max_cursor: 1,
    });
    let Frame::Blobs(page) = exchange(&mut relay_from_bob, &mut bob_conn, &page)? else {
        return Err("expected Blobs".into());
    };
    let bob_cipher = BlobCipher::new(&bob_welcome.group_id, bob_welcome.epoch, &bob_welcome.epoch_secret);
    for blob in page.blobs {
        let opened = bob_cipher.open(&blob.envelope)?;
        let from = if opened.sender == alice_signer.device_id() { "alice" } else { "?" };
        println!(
            "bob: cursor {} from {from} seq {}: {}",
            blob.cursor,
            opened.seq,
            String::from_utf8_lossy(&opened.payload)
        );
    }
    Ok(())
}
