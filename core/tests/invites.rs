//! Invites: QR payload round trips, expiry, the data URL, the combined parser, and the
//! pairing messages.

use proptest::prelude::*;
use zerok_core::CoreRng;
use zerok_core::invite::*;
use zerok_core::keys::*;

pub fn sample_qr(rng: &mut CoreRng) -> QrInvite {
    QrInvite {
        slot: 0x5_4321,
        secret: InviteSecret::random(rng),
        inviter_key: NoiseKeypair::generate(rng).public(),
        inviter_endpoint: rng.bytes(),
        relay_endpoint: rng.bytes(),
        relay_key: NoiseKeypair::generate(rng).public(),
        relay_addrs: vec!["127.0.0.1:4433".into(), "relay.example.org:4433".into()],
        expires_at_ms: 1_700_000_600_000,
    }
}

#[test]
fn qr_text_round_trips_and_is_compact() {
    let mut rng = CoreRng::from_seed([1; 32]);
    let qr = sample_qr(&mut rng);
    let text = qr.to_text().unwrap();
    assert!(text.starts_with(QR_PREFIX));
    assert!(text.len() < 360, "{} chars", text.len());
    assert!(text.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == ':'), "QR alphanumeric mode");
    assert_eq!(QrInvite::from_text(&text).unwrap(), qr);
    assert_eq!(QrInvite::from_text(&text.to_lowercase()).unwrap(), qr);
    assert_eq!(QrInvite::from_bytes(&qr.to_bytes().unwrap()).unwrap(), qr);
}

#[test]
fn qr_invites_expire_at_their_deadline() {
    let mut rng = CoreRng::from_seed([2; 32]);
    let qr = sample_qr(&mut rng);
    let text = qr.to_text().unwrap();
    assert!(matches!(InviteCode::parse(&text, qr.expires_at_ms - 1), Ok(InviteCode::Qr(_))));
    assert_eq!(InviteCode::parse(&text, qr.expires_at_ms), Err(InviteError::Expired));
    assert_eq!(qr.check_expiry(qr.expires_at_ms + 1), Err(InviteError::Expired));
}

#[test]
fn the_qr_data_url_is_an_svg_image() {
    let mut rng = CoreRng::from_seed([3; 32]);
    let url = sample_qr(&mut rng).qr_data_url().unwrap();
    let b64 = url.strip_prefix("data:image/svg+xml;base64,").unwrap();
    use base64::Engine as _;
    let svg = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
}

#[test]
fn bad_qr_payloads_are_refused() {
    let mut rng = CoreRng::from_seed([4; 32]);
    let qr = sample_qr(&mut rng);
    let bytes = qr.to_bytes().unwrap();
    for cut in 0..bytes.len() {
        assert!(QrInvite::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut v2 = bytes.to_vec();
    v2[0] = 2;
    assert_eq!(QrInvite::from_bytes(&v2), Err(InviteError::UnsupportedVersion));
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert_eq!(QrInvite::from_bytes(&trailing), Err(InviteError::Malformed));
    assert_eq!(QrInvite::from_text("0KSYNC:!!!"), Err(InviteError::Malformed));
    assert_eq!(QrInvite::from_text(&"0KSYNC:".repeat(200)), Err(InviteError::TooLong));
    let mut many = qr.clone();
    many.relay_addrs = vec!["a".into(); MAX_ADDR_HINTS + 1];
    assert_eq!(many.to_bytes().unwrap_err(), InviteError::TooLong);
    let mut big_slot = qr;
    big_slot.slot = 1 << SLOT_BITS;
    assert_eq!(QrInvite::from_bytes(&big_slot.to_bytes().unwrap()), Err(InviteError::Malformed));
}

#[test]
fn the_join_parser_takes_both_forms_and_explains_typos() {
    let mut rng = CoreRng::from_seed([5; 32]);
    let code = ShortCode::generate(&mut rng);
    let shown = code.display();
    assert_eq!(InviteCode::parse(&format!("  {shown}\n"), 0), Ok(InviteCode::Short(code.clone())));
    assert_eq!(InviteCode::parse(&shown, 0).unwrap().slot(), code.slot());
    let mut typo: Vec<char> = shown.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    assert_eq!(InviteCode::parse(&typo, 0), Err(InviteError::Checksum));
    assert_eq!(InviteCode::parse("hello", 0), Err(InviteError::WrongLength));
    assert_eq!(
        InviteError::Checksum.to_string(),
        "the code has a typo (check character mismatch)",
        "errors read well in a UI"
    );
}

#[test]
fn group_welcome_round_trips_and_redacts() {
    let mut rng = CoreRng::from_seed([6; 32]);
    let w = GroupWelcome {
        group_id: GroupId::random(&mut rng),
        epoch: 0,
        epoch_secret: EpochSecret::random(&mut rng),
        relay_endpoint: [1; 32],
        relay_key: NoisePublic([2; 32]),
        relay_addrs: vec!["127.0.0.1:1".into()],
    };
    let bytes = w.to_bytes();
    assert_eq!(GroupWelcome::from_bytes(&bytes).unwrap(), w);
    let shown = format!("{w:?}");
    assert!(!shown.contains("epoch_secret") && !shown.contains("group_id"), "{shown}");
    for cut in 0..bytes.len() {
        assert!(GroupWelcome::from_bytes(&bytes[..cut]).is_err());
    }
}

proptest! {
    #[test]
    fn short_codes_round_trip(slot in 0u32..(1 << SLOT_BITS), secret in 0u64..(1 << SECRET_BITS)) {
        let code = ShortCode::from_parts(slot, secret).unwrap();
        let shown = code.display();
        prop_assert_eq!(shown.len(), 19);
        let parsed = ShortCode::parse(&shown).unwrap();
        prop_assert_eq!(parsed.slot(), slot);
        prop_assert_eq!(parsed, code);
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,64}") {
        let _ = InviteCode::parse(&s, 0);
    }
}
