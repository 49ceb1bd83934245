//! snow's cacophony vectors for the two patterns we use, run through our builders, resolver,
//! handshake helpers and [`Session`].

use serde_json::Value;

use super::ik::{ik_state, into_session, read, write};
use super::{PairingHandshake, PairingRole, Session};
use crate::CoreRng;
use crate::keys::{NoiseKeypair, NoisePublic, NoiseSecret, PairingPsk};

const VECTORS: &str = include_str!("../../tests/data/cacophony_subset.json");

fn hex32(v: &Value, field: &str) -> [u8; 32] {
    hex::decode(v[field].as_str().unwrap()).unwrap().try_into().unwrap()
}

fn hexv(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap()).unwrap()
}

fn vector(name: &str) -> Value {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    all["vectors"].as_array().unwrap().iter().find(|v| v["protocol_name"] == name).unwrap().clone()
}

fn keypair(v: &Value, field: &str) -> NoiseKeypair {
    NoiseKeypair::from_secret(NoiseSecret::from_bytes(hex32(v, field)))
}

/// Checks the transport messages after the handshake, alternating from `next_sender`.
fn check_transport(v: &Value, from: usize, mut init: Session, mut resp: Session) {
    for (i, m) in v["messages"].as_array().unwrap().iter().enumerate().skip(from) {
        let (tx, rx) = if i % 2 == 0 { (&mut init, &mut resp) } else { (&mut resp, &mut init) };
        let ct = tx.encrypt(&hexv(m, "payload")).unwrap();
        assert_eq!(hex::encode(&ct), m["ciphertext"].as_str().unwrap(), "transport message {i}");
        assert_eq!(rx.decrypt(&ct).unwrap(), hexv(m, "payload"));
    }
}

#[test]
fn cacophony_ik_25519_chachapoly_blake2s() {
    let v = vector(super::IK_PATTERN);
    let mut rng = CoreRng::from_seed([0; 32]);
    let relay_pub = NoisePublic(hex32(&v, "init_remote_static"));
    let ie = hexv(&v, "init_ephemeral");
    let re = hexv(&v, "resp_ephemeral");
    let mut init =
        ik_state(&mut rng, &keypair(&v, "init_static"), Some(&relay_pub), &hexv(&v, "init_prologue"), Some(&ie))
            .unwrap();
    let mut resp =
        ik_state(&mut rng, &keypair(&v, "resp_static"), None, &hexv(&v, "resp_prologue"), Some(&re)).unwrap();
    let msgs = v["messages"].as_array().unwrap();
    for (i, m) in msgs.iter().take(2).enumerate() {
        let (tx, rx) = if i == 0 { (&mut init, &mut resp) } else { (&mut resp, &mut init) };
        let ct = write(tx, &hexv(m, "payload")).unwrap();
        assert_eq!(hex::encode(&ct), m["ciphertext"].as_str().unwrap(), "handshake message {i}");
        assert_eq!(read(rx, &ct).unwrap(), hexv(m, "payload"));
    }
    let init = into_session(init).unwrap();
    let resp = into_session(resp).unwrap();
    assert_eq!(hex::encode(init.handshake_hash()), v["handshake_hash"].as_str().unwrap());
    check_transport(&v, 2, init, resp);
}

#[test]
fn cacophony_xxpsk3_25519_chachapoly_blake2s() {
    let v = vector(super::XX_PATTERN);
    let mut rng = CoreRng::from_seed([0; 32]);
    let psk = PairingPsk::from_bytes(hex::decode(v["init_psks"][0].as_str().unwrap()).unwrap().try_into().unwrap());
    let ie = hexv(&v, "init_ephemeral");
    let re = hexv(&v, "resp_ephemeral");
    let mut init = PairingHandshake::new_inner(
        &mut rng,
        PairingRole::Joiner,
        &keypair(&v, "init_static"),
        &psk,
        &hexv(&v, "init_prologue"),
        None,
        Some(&ie),
    )
    .unwrap();
    let mut resp = PairingHandshake::new_inner(
        &mut rng,
        PairingRole::Inviter,
        &keypair(&v, "resp_static"),
        &psk,
        &hexv(&v, "resp_prologue"),
        None,
        Some(&re),
    )
    .unwrap();
    let msgs = v["messages"].as_array().unwrap();
    for (i, m) in msgs.iter().take(3).enumerate() {
        let (tx, rx) = if i % 2 == 0 { (&mut init, &mut resp) } else { (&mut resp, &mut init) };
        let ct = tx.write(&hexv(m, "payload")).unwrap();
        assert_eq!(hex::encode(&ct), m["ciphertext"].as_str().unwrap(), "handshake message {i}");
        assert_eq!(rx.read(&ct).unwrap(), hexv(m, "payload"));
    }
    let (init, _, code_i) = init.finish().unwrap();
    let (resp, _, code_r) = resp.finish().unwrap();
    assert_eq!(hex::encode(init.handshake_hash()), v["handshake_hash"].as_str().unwrap());
    assert_eq!(code_i, code_r);
    check_transport(&v, 3, init, resp);
}
