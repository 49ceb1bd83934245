//! An end-to-end exercise of the core with no IO: run inside the browser package's wasm module
//! in headless Chromium (`bindings-wasm/tests/web.rs`), so the wasm32 build links and runs
//! every primitive for real, and as a native test.

use crate::CoreRng;
use crate::envelope::{BlobCipher, BlobKind, ChainLink};
use crate::invite::{GroupWelcome, InviteCode, JoinRequest, QrInvite, ShortCode, SpakeExchange, pairing_prologue};
use crate::keys::*;
use crate::noise::*;
use crate::wire::{Frame, Ping};

/// Runs an IK session with a frame, a short-code pairing (SPAKE2 + XXpsk3), a QR invite and an
/// envelope round trip. Returns what failed, if anything.
pub fn self_check(seed: [u8; 32]) -> Result<String, &'static str> {
    let mut rng = CoreRng::from_seed(seed);

    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let group = GroupId::random(&mut rng);
    let auth = ClientAuth::new(&group, 1, Intent::Member);
    let (init, m1) =
        IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).map_err(|_| "ik start")?;
    let (relay_session, m2) = IkResponder::read_first(&mut rng, &relay, &prologue, &m1)
        .and_then(IkResponder::accept)
        .map_err(|_| "ik respond")?;
    let mut device = Channel::new(init.finish(&m2).map_err(|_| "ik finish")?, &[]);
    let mut relay_channel = Channel::new(relay_session, &[]);
    let mut wire = Vec::new();
    device.send(&Frame::Ping(Ping { nonce: 42 }), &mut wire).map_err(|_| "send")?;
    relay_channel.receive(&wire);
    match relay_channel.next_frame() {
        Ok(Some(Frame::Ping(Ping { nonce: 42 }))) => {}
        _ => return Err("frame"),
    }

    let code = ShortCode::parse(&ShortCode::generate(&mut rng).display()).map_err(|_| "short code")?;
    let (sj, mj) = SpakeExchange::start(&code, &mut rng);
    let (si, mi) = SpakeExchange::start(&code, &mut rng);
    let (pj, pi) = (sj.finish(&mi).map_err(|_| "spake")?, si.finish(&mj).map_err(|_| "spake")?);
    let (jk, ik) = (NoiseKeypair::generate(&mut rng), NoiseKeypair::generate(&mut rng));
    let prologue = pairing_prologue(code.slot());
    let mut j = PairingHandshake::new(&mut rng, PairingRole::Joiner, &jk, &pj, &prologue, None).map_err(|_| "xx")?;
    let mut i = PairingHandshake::new(&mut rng, PairingRole::Inviter, &ik, &pi, &prologue, None).map_err(|_| "xx")?;
    let request = JoinRequest::new(NoiseKeypair::generate(&mut rng).public(), DeviceId([3; 32]));
    let m1 = j.write(&[]).map_err(|_| "xx1")?;
    i.read(&m1).map_err(|_| "xx1")?;
    let m2 = i.write(&[]).map_err(|_| "xx2")?;
    j.read(&m2).map_err(|_| "xx2")?;
    let m3 = j.write(&request.to_bytes()).map_err(|_| "xx3")?;
    i.read(&m3).map_err(|_| "xx3")?;
    let (mut inviter, _, ci) = i.finish().map_err(|_| "xx finish")?;
    let (mut joiner, _, cj) = j.finish().map_err(|_| "xx finish")?;
    if ci != cj {
        return Err("confirmation code");
    }
    let welcome = GroupWelcome {
        group_id: group.clone(),
        epoch: 0,
        epoch_secret: EpochSecret::random(&mut rng),
        relay_endpoint: [2; 32],
        relay_key: relay.public(),
        relay_addrs: vec!["127.0.0.1:4433".into()],
    };
    let sealed_welcome = inviter.encrypt(&welcome.to_bytes()).map_err(|_| "welcome")?;
    let got =
        GroupWelcome::from_bytes(&joiner.decrypt(&sealed_welcome).map_err(|_| "welcome")?).map_err(|_| "welcome")?;

    let qr = QrInvite {
        slot: code.slot(),
        secret: InviteSecret::random(&mut rng),
        inviter_key: ik.public(),
        inviter_endpoint: [4; 32],
        relay_endpoint: [2; 32],
        relay_key: relay.public(),
        relay_addrs: got.relay_addrs.clone(),
        expires_at_ms: 10_000,
    };
    let text = qr.to_text().map_err(|_| "qr")?;
    if InviteCode::parse(&text, 9_999).map_err(|_| "qr parse")? != InviteCode::Qr(qr.clone()) {
        return Err("qr round trip");
    }
    let url = qr.qr_data_url().map_err(|_| "qr url")?;

    let cipher = BlobCipher::new(&got.group_id, got.epoch, &got.epoch_secret);
    let sender = DeviceSigningKey::generate(&mut rng);
    let sealed = cipher
        .seal(&sender, ChainLink { seq: 1, prev_hash: [0; 32] }, BlobKind::Data, b"hello from wasm", &mut rng)
        .map_err(|_| "seal")?;
    let opened = cipher.open(&sealed.envelope).map_err(|_| "open")?;
    if opened.payload != b"hello from wasm" || opened.hash != sealed.hash {
        return Err("envelope");
    }
    Ok(format!("ok confirmation={ci} envelope={} qr_url={}", sealed.envelope.len(), url.len()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_check_passes_natively() {
        let out = super::self_check([1; 32]).unwrap();
        assert!(out.starts_with("ok confirmation="), "{out}");
    }
}
