//! Key material: zeroized on drop, redacted in `Debug`, compared in constant time.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::rng::CoreRng;

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes (for loading from a store).
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// Fresh random bytes from the core generator.
            pub fn random(rng: &mut CoreRng) -> Self {
                $name(rng.bytes())
            }

            /// The raw bytes: handle with care, never log.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                self.0.ct_eq(&other.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_bytes!(
    /// The 32-byte identifier of a sync group. Random, so groups are unlinkable; treated as a
    /// secret because knowing it is a step towards addressing the group at the relay.
    GroupId
);
secret_bytes!(
    /// The secret of one key epoch of a group, from which the blob key is derived.
    EpochSecret
);
secret_bytes!(
    /// An X25519 private key used as a Noise static key.
    NoiseSecret
);
secret_bytes!(
    /// The 256-bit secret carried by a QR invite.
    InviteSecret
);
secret_bytes!(
    /// A 32-byte Noise pre-shared key derived for one pairing.
    PairingPsk
);

impl GroupId {
    /// Lower-case hex of the first 4 bytes, for humans telling groups apart; not an identifier.
    pub fn short_hex(&self) -> String {
        short_hex(&self.0)
    }
}

/// A public X25519 key used as a Noise static key (relay key, access key, device Noise key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NoisePublic(pub [u8; 32]);

impl core::fmt::Debug for NoisePublic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NoisePublic({})", hex_prefix(&self.0))
    }
}

/// A Noise static keypair: the relay identity, a device's per-group relay access key, or a
/// device's pairing key.
#[derive(Clone, PartialEq, Eq)]
pub struct NoiseKeypair {
    secret: NoiseSecret,
    public: NoisePublic,
}

impl NoiseKeypair {
    /// A fresh keypair.
    pub fn generate(rng: &mut CoreRng) -> Self {
        Self::from_secret(NoiseSecret::random(rng))
    }

    /// The keypair of a stored secret.
    pub fn from_secret(secret: NoiseSecret) -> Self {
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret.expose()));
        NoiseKeypair { secret, public: NoisePublic(public.to_bytes()) }
    }

    /// The private half.
    pub fn secret(&self) -> &NoiseSecret {
        &self.secret
    }

    /// The public half.
    pub fn public(&self) -> NoisePublic {
        self.public
    }
}

impl core::fmt::Debug for NoiseKeypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoiseKeypair").field("public", &self.public).finish_non_exhaustive()
    }
}

/// The public identity of a device: its Ed25519 verifying key, which signs every blob it sends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    /// Lower-case hex of the whole key.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Lower-case hex of the first 4 bytes, for humans telling devices apart; not an identifier.
    pub fn short_hex(&self) -> String {
        short_hex(&self.0)
    }
}

impl core::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceId({})", hex_prefix(&self.0))
    }
}

/// A device's Ed25519 signing key (zeroized on drop by ed25519-dalek).
#[derive(Clone)]
pub struct DeviceSigningKey(SigningKey);

impl DeviceSigningKey {
    /// A fresh signing key.
    pub fn generate(rng: &mut CoreRng) -> Self {
        DeviceSigningKey(SigningKey::generate(rng))
    }

    /// The key of a stored 32-byte seed.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        DeviceSigningKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for storing: never log.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The device's public identity.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.0.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl core::fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceSigningKey(<redacted>, id={:?})", self.device_id())
    }
}

impl PartialEq for DeviceSigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bytes().ct_eq(&other.0.to_bytes()).into()
    }
}

impl Eq for DeviceSigningKey {}

/// Checks an Ed25519 signature strictly (no malleable or small-order forms).
pub(crate) fn verify_signature(device: &DeviceId, msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&device.0) else {
        return false;
    };
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig)).is_ok()
}

/// X25519 between a Noise secret and a public key; `None` for an all-zero (low-order) result.
pub fn x25519(secret: &NoiseSecret, public: &NoisePublic) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let shared =
        x25519_dalek::StaticSecret::from(*secret.expose()).diffie_hellman(&x25519_dalek::PublicKey::from(public.0));
    shared.was_contributory().then(|| zeroize::Zeroizing::new(shared.to_bytes()))
}

fn hex_prefix(bytes: &[u8; 32]) -> String {
    let mut s: String = bytes.iter().take(6).map(|b| format!("{b:02x}")).collect();
    s.push('…');
    s
}

/// Lower-case hex of the first 4 bytes of a key or id.
fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secret_bytes() {
        let mut rng = CoreRng::from_seed([3; 32]);
        let secret = EpochSecret::from_bytes([0xAB; 32]);
        assert_eq!(format!("{secret:?}"), "EpochSecret(<redacted>)");
        let kp = NoiseKeypair::from_secret(NoiseSecret::from_bytes([0xCD; 32]));
        assert!(!format!("{kp:?}").contains("cdcd"));
        let sk = DeviceSigningKey::from_bytes(&[0xEF; 32]);
        assert!(!format!("{sk:?}").to_lowercase().contains("efef"));
        let g = GroupId::random(&mut rng);
        assert_eq!(format!("{g:?}"), "GroupId(<redacted>)");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(GroupId::from_bytes([1; 32]), GroupId::from_bytes([1; 32]));
        assert_ne!(GroupId::from_bytes([1; 32]), GroupId::from_bytes([2; 32]));
        let a = DeviceSigningKey::from_bytes(&[5; 32]);
        assert_eq!(a, a.clone());
        assert_ne!(a, DeviceSigningKey::from_bytes(&[6; 32]));
    }

    #[test]
    fn x25519_agrees_and_rejects_low_order() {
        let mut rng = CoreRng::from_seed([9; 32]);
        let a = NoiseKeypair::generate(&mut rng);
        let b = NoiseKeypair::generate(&mut rng);
        let ab = x25519(a.secret(), &b.public()).expect("contributory");
        let ba = x25519(b.secret(), &a.public()).expect("contributory");
        assert_eq!(*ab, *ba);
        assert!(x25519(a.secret(), &NoisePublic([0; 32])).is_none());
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let sk = DeviceSigningKey::from_bytes(&[4; 32]);
        let sig = sk.sign(b"hello");
        assert!(verify_signature(&sk.device_id(), b"hello", &sig));
        assert!(!verify_signature(&sk.device_id(), b"hellO", &sig));
        assert!(!verify_signature(&DeviceId([0xFF; 32]), b"hello", &sig));
    }
}
