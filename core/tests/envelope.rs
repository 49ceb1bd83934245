//! The blob envelope: seal/open, binding to group and epoch, chain fields, size limits, and a
//! mutation sweep: every bit flip and every truncation of 1,000 envelopes is refused.

use proptest::prelude::*;
use zerok_core::CoreRng;
use zerok_core::envelope::*;
use zerok_core::keys::*;

fn setup(seed: u8) -> (CoreRng, BlobCipher, DeviceSigningKey, GroupId, EpochSecret) {
    let mut rng = CoreRng::from_seed([seed; 32]);
    let group = GroupId::random(&mut rng);
    let secret = EpochSecret::random(&mut rng);
    let cipher = BlobCipher::new(&group, 0, &secret);
    let signer = DeviceSigningKey::generate(&mut rng);
    (rng, cipher, signer, group, secret)
}

const FIRST: ChainLink = ChainLink { seq: 1, prev_hash: [0; 32] };

#[test]
fn seal_open_round_trip_carries_the_chain() {
    let (mut rng, cipher, signer, _, _) = setup(1);
    let s1 = cipher.seal(&signer, FIRST, BlobKind::Data, b"one", &mut rng).unwrap();
    let o1 = cipher.open(&s1.envelope).unwrap();
    assert_eq!((o1.sender, o1.seq, o1.prev_hash, o1.kind), (signer.device_id(), 1, [0; 32], BlobKind::Data));
    assert_eq!(o1.payload, b"one");
    assert_eq!(o1.hash, s1.hash);
    let e2 = cipher
        .seal(&signer, ChainLink { seq: 2, prev_hash: o1.hash }, BlobKind::Data, b"two", &mut rng)
        .unwrap()
        .envelope;
    assert_eq!(cipher.open(&e2).unwrap().prev_hash, o1.hash);
}

#[test]
fn nonces_are_fresh_so_equal_payloads_give_different_envelopes() {
    let (mut rng, cipher, signer, _, _) = setup(2);
    let a = cipher.seal(&signer, FIRST, BlobKind::Data, b"same", &mut rng).unwrap().envelope;
    let b = cipher.seal(&signer, FIRST, BlobKind::Data, b"same", &mut rng).unwrap().envelope;
    assert_ne!(a[5..29], b[5..29]);
    assert_ne!(a, b);
    // The chain hash depends on the signed content only: a re-seal is the same blob...
    assert_eq!(cipher.open(&a).unwrap().hash, cipher.open(&b).unwrap().hash);
    // ...and different content is a different blob.
    let c = cipher.seal(&signer, FIRST, BlobKind::Data, b"other", &mut rng).unwrap().envelope;
    assert_ne!(cipher.open(&a).unwrap().hash, cipher.open(&c).unwrap().hash);
}

#[test]
fn another_group_or_epoch_or_secret_cannot_open() {
    let (mut rng, cipher, signer, group, secret) = setup(3);
    let e = cipher.seal(&signer, FIRST, BlobKind::Data, b"x", &mut rng).unwrap().envelope;
    let other_group = BlobCipher::new(&GroupId::random(&mut rng), 0, &secret);
    assert_eq!(other_group.open(&e), Err(OpenError::Decrypt));
    let other_secret = BlobCipher::new(&group, 0, &EpochSecret::random(&mut rng));
    assert_eq!(other_secret.open(&e), Err(OpenError::Decrypt));
    let other_epoch = BlobCipher::new(&group, 1, &secret);
    assert_eq!(other_epoch.open(&e), Err(OpenError::WrongEpoch(0)));
    // Rewriting the epoch byte to match fails authentication (the AAD binds it).
    let mut moved = e.clone();
    moved[4] = 1;
    assert_eq!(other_epoch.open(&moved), Err(OpenError::Decrypt));
}

#[test]
fn padding_hides_lengths_with_a_floor() {
    let (mut rng, cipher, signer, _, _) = setup(4);
    let small: Vec<usize> = [0usize, 1, 50, 115]
        .iter()
        .map(|n| cipher.seal(&signer, FIRST, BlobKind::Data, &vec![7; *n], &mut rng).unwrap().envelope.len())
        .collect();
    assert!(small.iter().all(|l| *l == MIN_ENVELOPE), "{small:?}");
    let e = cipher.seal(&signer, FIRST, BlobKind::Data, &vec![7; 10_000], &mut rng).unwrap().envelope;
    assert_eq!(e.len(), OUTER_HEADER_LEN + padded_len(10_000 + INNER_OVERHEAD) + 16);
}

#[test]
fn size_limits() {
    let (mut rng, cipher, signer, _, _) = setup(5);
    let max = cipher.seal(&signer, FIRST, BlobKind::Data, &vec![1; MAX_PAYLOAD], &mut rng).unwrap().envelope;
    assert_eq!(max.len(), MAX_ENVELOPE);
    assert_eq!(cipher.open(&max).unwrap().payload.len(), MAX_PAYLOAD);
    assert_eq!(
        cipher.seal(&signer, FIRST, BlobKind::Data, &vec![1; MAX_PAYLOAD + 1], &mut rng),
        Err(SealError::TooLarge(MAX_PAYLOAD + 1))
    );
    let mut too_long = max.clone();
    too_long.push(0);
    assert_eq!(cipher.open(&too_long), Err(OpenError::Malformed));
    assert_eq!(cipher.open(&max[..MIN_ENVELOPE - 1]), Err(OpenError::Malformed));
    assert_eq!(
        cipher
            .seal(&signer, ChainLink { seq: 0, prev_hash: [0; 32] }, BlobKind::Data, b"", &mut rng)
            .map(|s| s.envelope),
        Err(SealError::ZeroSeq)
    );
}

#[test]
fn unknown_version_is_reported() {
    let (mut rng, cipher, signer, _, _) = setup(6);
    let mut e = cipher.seal(&signer, FIRST, BlobKind::Data, b"v", &mut rng).unwrap().envelope;
    e[0] = 2;
    assert_eq!(cipher.open(&e), Err(OpenError::UnsupportedVersion(2)));
}

#[test]
fn every_bit_flip_and_truncation_of_1000_envelopes_is_rejected() {
    let (mut rng, cipher, signer, _, _) = setup(7);
    let mut checked = 0u64;
    for i in 0..1000u64 {
        let len = rng.below(200) as usize;
        let payload: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let link = ChainLink { seq: i + 1, prev_hash: rng.bytes() };
        let e = cipher.seal(&signer, link, BlobKind::Data, &payload, &mut rng).unwrap().envelope;
        assert_eq!(cipher.open(&e).unwrap().payload, payload);
        let mut m = e.clone();
        for bit in 0..e.len() * 8 {
            m[bit / 8] ^= 1 << (bit % 8);
            assert!(cipher.open(&m).is_err(), "envelope {i}, bit {bit} accepted");
            m[bit / 8] ^= 1 << (bit % 8);
            checked += 1;
        }
        for cut in 0..e.len() {
            assert!(cipher.open(&e[..cut]).is_err(), "envelope {i}, truncated to {cut} accepted");
            checked += 1;
        }
    }
    assert!(checked > 2_000_000);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_open_or_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (_, cipher, _, _, _) = setup(8);
        prop_assert!(cipher.open(&data).is_err());
    }

    #[test]
    fn any_payload_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..5000), seq in 1u64..u64::MAX) {
        let (mut rng, cipher, signer, _, _) = setup(9);
        let e = cipher.seal(&signer, ChainLink { seq, prev_hash: [3; 32] }, BlobKind::Data, &payload, &mut rng).unwrap().envelope;
        let o = cipher.open(&e).unwrap();
        prop_assert_eq!(o.payload, payload);
        prop_assert_eq!(o.seq, seq);
    }
}
