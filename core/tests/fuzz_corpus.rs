//! The committed fuzz seed corpus (fuzz/corpus/<target>/) is made of real encodings. This test
//! checks that each seed still decodes as its target expects; with `ZEROK_WRITE_CORPUS=1` it
//! rewrites the corpus from the current encoders first.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers outside #[test] functions")]

mod support;

use std::path::PathBuf;

use zerok_core::CoreRng;
use zerok_core::envelope::{BlobCipher, BlobKind, ChainLink};
use zerok_core::http_head;
use zerok_core::invite::{QrInvite, ShortCode};
use zerok_core::keys::*;
use zerok_core::noise::{ClientAuth, IkInitiator, IkResponder, Intent, ik_prologue};
use zerok_core::wire::{Frame, RecordReader, encode_record};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// Keys must match those in `zerok_core::fuzzing`.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut rng = CoreRng::from_seed([0x77; 32]);
    let mut out = Vec::new();
    let frames = support::sample_frames();
    let mut stream = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let bytes = f.to_bytes().unwrap();
        stream.extend_from_slice(&bytes);
        out.push(("frame_decode", format!("{i:02}"), bytes.clone()));
        let mut rec = Vec::new();
        encode_record(&bytes, &mut rec).unwrap();
        out.push(("record_decode", format!("{i:02}"), rec));
    }
    for split in [1u8, 3, 17, 255] {
        let mut d = vec![split];
        d.extend_from_slice(&stream);
        out.push(("deframer", format!("split{split}"), d));
    }
    let cipher = BlobCipher::new(&GroupId::from_bytes([1; 32]), 0, &EpochSecret::from_bytes([2; 32]));
    let signer = DeviceSigningKey::generate(&mut rng);
    for (i, len) in [0usize, 100, 3000].iter().enumerate() {
        let e = cipher
            .seal(
                &signer,
                ChainLink { seq: i as u64 + 1, prev_hash: [0; 32] },
                BlobKind::Data,
                &vec![0x61; *len],
                &mut rng,
            )
            .unwrap()
            .envelope;
        out.push(("envelope_open", format!("{i:02}"), e));
    }
    let qr = QrInvite {
        slot: 77,
        secret: InviteSecret::random(&mut rng),
        inviter_key: NoiseKeypair::generate(&mut rng).public(),
        inviter_endpoint: [1; 32],
        relay_endpoint: [2; 32],
        relay_key: NoiseKeypair::generate(&mut rng).public(),
        relay_addrs: vec!["127.0.0.1:4433".into()],
        expires_at_ms: 1_700_000_000_000,
    };
    out.push(("qr_payload_parse", "bytes".into(), qr.to_bytes().unwrap().to_vec()));
    out.push(("qr_payload_parse", "text".into(), qr.to_text().unwrap().as_bytes().to_vec()));
    for i in 0..3 {
        let code = ShortCode::generate(&mut rng).display();
        out.push(("short_code_parse", format!("{i:02}"), code.into_bytes()));
    }
    let relay = NoiseKeypair::from_secret(NoiseSecret::from_bytes([4; 32]));
    let prologue = ik_prologue(&[5; 32], &[6; 32]);
    for (i, intent) in
        [Intent::Member, Intent::Pairing, Intent::CreateGroup { admission_token: None }].into_iter().enumerate()
    {
        let access = NoiseKeypair::generate(&mut rng);
        let auth = ClientAuth::new(&GroupId::from_bytes([9; 32]), 1_700_000_000_000, intent);
        let (_, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
        out.push(("handshake_responder", format!("{i:02}"), m1));
    }
    let upgrade = "GET /sync HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    out.push(("http_request_head", "upgrade".into(), upgrade.as_bytes().to_vec()));
    out.push(("http_request_head", "metrics".into(), b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()));
    out
}

fn accepted(target: &str, data: &[u8]) -> bool {
    match target {
        "frame_decode" => Frame::decode(data).is_ok(),
        "record_decode" => {
            let mut r = RecordReader::new(65_535);
            r.push(data);
            matches!(r.next_record(), Ok(Some(_)))
        }
        "deframer" => data.len() > 1,
        "envelope_open" => {
            BlobCipher::new(&GroupId::from_bytes([1; 32]), 0, &EpochSecret::from_bytes([2; 32])).open(data).is_ok()
        }
        "qr_payload_parse" => {
            QrInvite::from_bytes(data).is_ok()
                || std::str::from_utf8(data).is_ok_and(|t| QrInvite::from_text(t).is_ok())
        }
        "short_code_parse" => std::str::from_utf8(data).is_ok_and(|t| ShortCode::parse(t).is_ok()),
        "handshake_responder" => {
            let mut rng = CoreRng::from_seed([3; 32]);
            let relay = NoiseKeypair::from_secret(NoiseSecret::from_bytes([4; 32]));
            IkResponder::read_first(&mut rng, &relay, &ik_prologue(&[5; 32], &[6; 32]), data).is_ok()
        }
        "http_request_head" => http_head::head_end(data) == Some(data.len()),
        other => panic!("unknown target {other}"),
    }
}

#[test]
fn committed_seeds_are_real_encodings() {
    if std::env::var_os("ZEROK_WRITE_CORPUS").is_some() {
        for (target, name, data) in seeds() {
            std::fs::create_dir_all(corpus_dir(target)).unwrap();
            std::fs::write(corpus_dir(target).join(name), data).unwrap();
        }
    }
    let targets = [
        "record_decode",
        "frame_decode",
        "deframer",
        "envelope_open",
        "qr_payload_parse",
        "short_code_parse",
        "handshake_responder",
        "http_request_head",
    ];
    for target in targets {
        let entries: Vec<_> = std::fs::read_dir(corpus_dir(target)).unwrap().collect();
        assert!(!entries.is_empty(), "no seeds for {target}");
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            assert!(accepted(target, &data), "{} is not accepted by {target}", path.display());
            match target {
                "frame_decode" => zerok_core::fuzzing::frame_decode(&data),
                "record_decode" => zerok_core::fuzzing::record_decode(&data),
                "deframer" => zerok_core::fuzzing::deframer(&data),
                "envelope_open" => zerok_core::fuzzing::envelope_open(&data),
                "qr_payload_parse" => zerok_core::fuzzing::qr_payload_parse(&data),
                "short_code_parse" => zerok_core::fuzzing::short_code_parse(&data),
                "http_request_head" => zerok_core::fuzzing::http_request_head(&data),
                _ => zerok_core::fuzzing::handshake_responder(&data),
            }
        }
    }
}
