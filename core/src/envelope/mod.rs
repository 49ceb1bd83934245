//! The blob envelope: what a device pushes and the relay stores, opaque to the relay.
//!
//! Wire: `version (1) || epoch (u32 BE) || nonce (24) || XChaCha20-Poly1305 ciphertext`.
//! Inner plaintext: `sender (32) || seq (u64 BE) || prev_hash (32) || kind (1) ||
//! payload_len (u32 BE) || payload || Ed25519 signature (64) || zero padding` to the Padmé
//! length (floor 256). The signature covers the header fields and the BLAKE3 hash of the
//! payload (hash-then-sign: one fast pass over the payload instead of two SHA-512 passes),
//! and the blob's chain hash is taken over what was signed plus the signature, so it is
//! independent of the nonce. See docs/PROTOCOL.md.

mod padme;

pub use padme::{PAD_FLOOR, padded_len, padme};

use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::CoreRng;
use crate::crypto::{AEAD_NONCE_LEN as NONCE_LEN, AEAD_TAG_LEN as TAG_LEN, Aead256, hkdf_sha256_32};
use crate::keys::{DeviceId, DeviceSigningKey, EpochSecret, GroupId, verify_signature};

/// Envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;
/// Largest payload a blob may carry (1 MiB).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Bytes before the ciphertext: version, epoch, nonce.
pub const OUTER_HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Inner bytes besides payload and padding: sender, seq, prev hash, kind, length, signature.
pub const INNER_OVERHEAD: usize = 32 + 8 + 32 + 1 + 4 + 64;
/// The largest envelope: a maximal payload, padded, plus header and tag.
pub const MAX_ENVELOPE: usize = OUTER_HEADER_LEN + padded_len(MAX_PAYLOAD + INNER_OVERHEAD) + TAG_LEN;
/// The smallest envelope: an empty payload padded to the floor.
pub const MIN_ENVELOPE: usize = OUTER_HEADER_LEN + PAD_FLOOR + TAG_LEN;

const KEY_LABEL: &[u8] = b"0k-sync blob key v1";
const AAD_LABEL: &[u8] = b"0k-sync/blob/v1";
const SIG_LABEL: &[u8] = b"0k-sync/blob-sig/v1";
const PAYLOAD_HASH_CONTEXT: &str = "0k-sync blob payload v1";
const CHAIN_HASH_CONTEXT: &str = "0k-sync blob chain v1";
/// Inner offset of the payload: sender, seq, prev hash, kind, length.
const PAYLOAD_OFFSET: usize = 32 + 8 + 32 + 1 + 4;

/// What a blob is for. Only `Data` exists in version 1; other values are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum BlobKind {
    /// Application data.
    Data = 0,
}

impl BlobKind {
    fn from_u8(b: u8) -> Option<Self> {
        (b == 0).then_some(BlobKind::Data)
    }
}

/// The per-sender chain position of a blob being sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainLink {
    /// The sender's sequence number: 1 for its first blob, then +1 per blob.
    pub seq: u64,
    /// The chain hash ([`SealedBlob::hash`]) of the sender's previous blob; zero for seq 1.
    pub prev_hash: [u8; 32],
}

/// An envelope that decrypted and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedBlob {
    /// The signing device.
    pub sender: DeviceId,
    /// The sender's sequence number.
    pub seq: u64,
    /// Hash of the sender's previous envelope.
    pub prev_hash: [u8; 32],
    /// What the blob is for.
    pub kind: BlobKind,
    /// The application payload.
    pub payload: Vec<u8>,
    /// This blob's chain hash: the sender's next blob links to it. Equal for two envelopes
    /// exactly when they carry the same signed content (whatever their nonces).
    pub hash: [u8; 32],
}

/// A freshly sealed envelope and its chain hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlob {
    /// The bytes to push.
    pub envelope: Vec<u8>,
    /// The chain hash, to use as `prev_hash` of the sender's next blob.
    pub hash: [u8; 32],
}

/// Why an envelope was not sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The payload exceeds [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the 1 MiB limit")]
    TooLarge(usize),
    /// Sequence numbers start at 1.
    #[error("sequence numbers start at 1")]
    ZeroSeq,
    /// The cipher refused the input (cannot happen below the size limit).
    #[error("encryption failed")]
    Crypto,
}

/// Why an envelope was refused. Every failure is one of these, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than the smallest envelope, longer than the largest, or a bad inner layout.
    #[error("malformed envelope")]
    Malformed,
    /// An envelope version this build does not read.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// Sealed under an epoch this key is not for.
    #[error("envelope from epoch {0}, not this key's epoch")]
    WrongEpoch(u32),
    /// Authentication failed: wrong key, wrong group, or tampered bytes.
    #[error("envelope failed authentication")]
    Decrypt,
    /// Padding is not the canonical zero padding.
    #[error("bad padding")]
    BadPadding,
    /// The sender's signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// The blob key of one group epoch: seals and opens envelopes.
pub struct BlobCipher {
    aead: Aead256,
    group: GroupId,
    epoch: u32,
}

impl core::fmt::Debug for BlobCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlobCipher").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}

impl BlobCipher {
    /// Derives the key `HKDF-SHA256(salt = group id, ikm = epoch secret,
    /// info = "0k-sync blob key v1" || epoch)`.
    pub fn new(group: &GroupId, epoch: u32, secret: &EpochSecret) -> Self {
        let mut info = KEY_LABEL.to_vec();
        info.extend_from_slice(&epoch.to_be_bytes());
        let key = hkdf_sha256_32(Some(group.expose()), secret.expose(), &info);
        BlobCipher { aead: Aead256::new(&key), group: group.clone(), epoch }
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Seals `payload` from `signer` at `link`. The nonce is drawn from `rng` here, never
    /// passed in, so a caller cannot reuse one.
    pub fn seal(
        &self,
        signer: &DeviceSigningKey,
        link: ChainLink,
        kind: BlobKind,
        payload: &[u8],
        rng: &mut CoreRng,
    ) -> Result<SealedBlob, SealError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(SealError::TooLarge(payload.len()));
        }
        if link.seq == 0 {
            return Err(SealError::ZeroSeq);
        }
        let nonce: [u8; NONCE_LEN] = rng.bytes();
        let padded = padded_len(INNER_OVERHEAD + payload.len());
        // Sized exactly, so the plaintext is never left behind by a reallocation: it is
        // encrypted in place below.
        let mut out = Vec::with_capacity(OUTER_HEADER_LEN + padded + TAG_LEN);
        out.extend_from_slice(&self.header(&nonce));
        out.extend_from_slice(&signer.device_id().0);
        out.extend_from_slice(&link.seq.to_be_bytes());
        out.extend_from_slice(&link.prev_hash);
        out.push(kind as u8);
        // payload.len() <= MAX_PAYLOAD fits in u32.
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        let signed = self.signed_message(out.get(OUTER_HEADER_LEN..).unwrap_or_default(), payload);
        let signature = signer.sign(&signed);
        out.extend_from_slice(payload);
        out.extend_from_slice(&signature);
        out.resize(OUTER_HEADER_LEN + padded, 0);
        let inner = out.get_mut(OUTER_HEADER_LEN..).ok_or(SealError::Crypto)?;
        let tag = self.aead.seal_in_place(&nonce, &self.aad(), inner).ok_or(SealError::Crypto)?;
        out.extend_from_slice(&tag);
        Ok(SealedBlob { envelope: out, hash: chain_hash(&signed, &signature) })
    }

    /// Opens an envelope: checks version, epoch, authentication, layout, padding and signature.
    pub fn open(&self, envelope: &[u8]) -> Result<OpenedBlob, OpenError> {
        if envelope.len() < MIN_ENVELOPE || envelope.len() > MAX_ENVELOPE {
            return Err(OpenError::Malformed);
        }
        let (header, ciphertext) = envelope.split_at(OUTER_HEADER_LEN);
        let (version, rest) = header.split_first().ok_or(OpenError::Malformed)?;
        if *version != ENVELOPE_VERSION {
            return Err(OpenError::UnsupportedVersion(*version));
        }
        let (epoch_bytes, nonce) = rest.split_at(4);
        let epoch = u32::from_be_bytes(epoch_bytes.try_into().map_err(|_| OpenError::Malformed)?);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        if epoch != self.epoch {
            return Err(OpenError::WrongEpoch(epoch));
        }
        let (body, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::Malformed)?;
        let mut inner = Zeroizing::new(body.to_vec());
        if !self.aead.open_in_place(nonce, &self.aad(), &mut inner, tag) {
            return Err(OpenError::Decrypt);
        }
        self.parse_inner(inner)
    }

    /// Checks the decrypted inner plaintext and turns it into the payload without copying it
    /// again. `inner` is zeroized on every error path.
    fn parse_inner(&self, mut inner: Zeroizing<Vec<u8>>) -> Result<OpenedBlob, OpenError> {
        let mut r = Reader(&inner);
        let sender = DeviceId(r.array()?);
        let seq = u64::from_be_bytes(r.array()?);
        let prev_hash: [u8; 32] = r.array()?;
        let [kind] = r.array()?;
        let kind = BlobKind::from_u8(kind).ok_or(OpenError::Malformed)?;
        let payload_len = u32::from_be_bytes(r.array()?) as usize;
        if payload_len > MAX_PAYLOAD || seq == 0 {
            return Err(OpenError::Malformed);
        }
        let payload = r.take(payload_len)?;
        let signature: [u8; 64] = r.array()?;
        if inner.len() != padded_len(INNER_OVERHEAD + payload_len) {
            return Err(OpenError::BadPadding);
        }
        if !bool::from(r.0.iter().fold(0u8, |acc, b| acc | b).ct_eq(&0)) {
            return Err(OpenError::BadPadding);
        }
        let header = inner.get(..PAYLOAD_OFFSET).ok_or(OpenError::Malformed)?;
        let signed = self.signed_message(header, payload);
        if !verify_signature(&sender, &signed, &signature) {
            return Err(OpenError::BadSignature);
        }
        let hash = chain_hash(&signed, &signature);
        inner.copy_within(PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload_len, 0);
        inner.truncate(payload_len);
        let payload = core::mem::take(&mut *inner);
        Ok(OpenedBlob { sender, seq, prev_hash, kind, payload, hash })
    }

    fn header(&self, nonce: &[u8; NONCE_LEN]) -> [u8; OUTER_HEADER_LEN] {
        let mut h = [0u8; OUTER_HEADER_LEN];
        let (v, rest) = h.split_at_mut(1);
        v.copy_from_slice(&[ENVELOPE_VERSION]);
        let (e, n) = rest.split_at_mut(4);
        e.copy_from_slice(&self.epoch.to_be_bytes());
        n.copy_from_slice(nonce);
        h
    }

    /// `label || version || group id || epoch`: binds a blob to its group and epoch.
    fn context(&self, label: &[u8], extra: usize) -> Vec<u8> {
        let mut c = Vec::with_capacity(label.len() + 1 + 32 + 4 + extra);
        c.extend_from_slice(label);
        c.push(ENVELOPE_VERSION);
        c.extend_from_slice(self.group.expose());
        c.extend_from_slice(&self.epoch.to_be_bytes());
        c
    }

    fn aad(&self) -> Vec<u8> {
        self.context(AAD_LABEL, 0)
    }

    /// `context || inner header || BLAKE3(payload)`: what the sender signs.
    fn signed_message(&self, header: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut m = self.context(SIG_LABEL, header.len() + 32);
        m.extend_from_slice(header);
        let mut hasher = blake3::Hasher::new_derive_key(PAYLOAD_HASH_CONTEXT);
        hasher.update(payload);
        m.extend_from_slice(hasher.finalize().as_bytes());
        m
    }
}

/// The chain hash of a blob: BLAKE3 (derive-key mode) over what was signed and the signature.
fn chain_hash(signed: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CHAIN_HASH_CONTEXT);
    hasher.update(signed);
    hasher.update(signature);
    hasher.finalize().into()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpenError> {
        if n > self.0.len() {
            return Err(OpenError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OpenError> {
        self.take(N)?.try_into().map_err(|_| OpenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group member (who holds the key) re-encrypting a modified inner plaintext.
    fn reseal(cipher: &BlobCipher, envelope: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = envelope[5..OUTER_HEADER_LEN].try_into().unwrap();
        let mut inner = cipher.aead.open(&nonce, &cipher.aad(), &envelope[OUTER_HEADER_LEN..]).unwrap();
        edit(&mut inner);
        let mut out = envelope[..OUTER_HEADER_LEN].to_vec();
        out.extend(cipher.aead.seal(&nonce, &cipher.aad(), &inner).unwrap());
        out
    }

    #[test]
    fn insiders_cannot_forge_signatures_or_bend_the_layout() {
        let mut rng = CoreRng::from_seed([1; 32]);
        let cipher = BlobCipher::new(&GroupId::from_bytes([1; 32]), 0, &EpochSecret::from_bytes([2; 32]));
        let signer = DeviceSigningKey::generate(&mut rng);
        let link = ChainLink { seq: 5, prev_hash: [9; 32] };
        let e = cipher.seal(&signer, link, BlobKind::Data, b"payload", &mut rng).unwrap().envelope;
        assert!(cipher.open(&e).is_ok());
        // Change the payload but keep the signature.
        let forged = reseal(&cipher, &e, |i| i[INNER_OVERHEAD - 64] ^= 1);
        assert_eq!(cipher.open(&forged), Err(OpenError::BadSignature));
        // Claim another sender.
        let spoofed = reseal(&cipher, &e, |i| i[0] ^= 1);
        assert_eq!(cipher.open(&spoofed), Err(OpenError::BadSignature));
        // Non-zero padding.
        let dirty = reseal(&cipher, &e, |i| *i.last_mut().unwrap() = 1);
        assert_eq!(cipher.open(&dirty), Err(OpenError::BadPadding));
        // Padding of the wrong length.
        let long = reseal(&cipher, &e, |i| i.extend_from_slice(&[0; 16]));
        assert_eq!(cipher.open(&long), Err(OpenError::BadPadding));
        // Unknown kind, zero seq, and a payload length past the end.
        let kind = reseal(&cipher, &e, |i| i[72] = 9);
        assert_eq!(cipher.open(&kind), Err(OpenError::Malformed));
        let zero = reseal(&cipher, &e, |i| i[32..40].copy_from_slice(&[0; 8]));
        assert_eq!(cipher.open(&zero), Err(OpenError::Malformed));
        let overlong = reseal(&cipher, &e, |i| i[73..77].copy_from_slice(&1000u32.to_be_bytes()));
        assert_eq!(cipher.open(&overlong), Err(OpenError::Malformed));
    }
}
