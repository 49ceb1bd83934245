//! Thin wrappers over the primitives the protocol uses, in one place so that the Wycheproof
//! vectors test exactly what the envelope, the keys and the invites call.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// XChaCha20-Poly1305 key length.
pub const AEAD_KEY_LEN: usize = 32;
/// XChaCha20-Poly1305 nonce length.
pub const AEAD_NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const AEAD_TAG_LEN: usize = 16;

/// An XChaCha20-Poly1305 key, ready to use.
pub struct Aead256(XChaCha20Poly1305);

impl core::fmt::Debug for Aead256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Aead256(<redacted>)")
    }
}

impl Aead256 {
    /// A cipher with this key.
    pub fn new(key: &[u8; AEAD_KEY_LEN]) -> Self {
        Aead256(XChaCha20Poly1305::new(key.into()))
    }

    /// `ciphertext || tag`; `None` only past the cipher's length limit.
    pub fn seal(&self, nonce: &[u8; AEAD_NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(XNonce::from_slice(nonce), Payload { msg: plaintext, aad }).ok()
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; AEAD_TAG_LEN]> {
        self.0.encrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf).ok().map(Into::into)
    }

    /// Decrypts `buf` in place if `tag` authenticates it; otherwise leaves it unchanged.
    pub fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> bool {
        self.0.decrypt_in_place_detached(XNonce::from_slice(nonce), aad, buf, tag.into()).is_ok()
    }

    /// The plaintext of `ciphertext || tag`, or `None` if it does not authenticate.
    pub fn open(&self, nonce: &[u8; AEAD_NONCE_LEN], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok()
    }
}

/// HKDF-SHA256 into `out`; `None` if `out` is longer than 255 × 32 bytes.
pub fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) -> Option<()> {
    Hkdf::<Sha256>::new(salt, ikm).expand(info, out).ok()
}

/// A 32-byte HKDF-SHA256 output (always within the length limit).
pub fn hkdf_sha256_32(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    let _ = hkdf_sha256(salt, ikm, info, out.as_mut());
    out
}

pub use crate::keys::x25519;

/// Strict Ed25519 verification of `sig` by the 32-byte public key `key`.
pub fn ed25519_verify(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    crate::keys::verify_signature(&crate::keys::DeviceId(*key), msg, sig)
}
