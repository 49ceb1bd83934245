//! SPAKE2 turns a short code's 55-bit secret into a 256-bit pairing psk, giving an attacker
//! one online guess per attempt (and an invite dies after 3 failed attempts).

use spake2::{Ed25519Group, Identity, Password, Spake2};
use subtle::ConstantTimeEq;

use super::{InviteError, ShortCode};
use crate::CoreRng;
use crate::keys::{InviteSecret, PairingPsk};

const IDENTITY_LABEL: &[u8] = b"0k-sync/pair/v1";
const PSK_LABEL: &[u8] = b"0k-sync pairing psk v1";

/// One side of the symmetric SPAKE2 exchange (both devices run the same code).
pub struct SpakeExchange {
    state: Spake2<Ed25519Group>,
    outbound: Vec<u8>,
    slot: u32,
}

impl core::fmt::Debug for SpakeExchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpakeExchange").field("slot", &self.slot).finish_non_exhaustive()
    }
}

impl SpakeExchange {
    /// Starts the exchange; returns the state and the message to send to the other device.
    pub fn start(code: &ShortCode, rng: &mut CoreRng) -> (Self, Vec<u8>) {
        let password = Password::new(code.secret_bytes().as_slice());
        let identity = Identity::new(&identity_bytes(code.slot()));
        let (state, outbound) = Spake2::<Ed25519Group>::start_symmetric_with_rng(&password, &identity, rng);
        (SpakeExchange { state, outbound: outbound.clone(), slot: code.slot() }, outbound)
    }

    /// Finishes with the other device's message. A reflected copy of our own message is
    /// refused (the spake2 crate does not check this in symmetric mode).
    pub fn finish(self, inbound: &[u8]) -> Result<PairingPsk, InviteError> {
        if bool::from(inbound.ct_eq(self.outbound.as_slice())) {
            return Err(InviteError::Reflected);
        }
        let key = zeroize::Zeroizing::new(self.state.finish(inbound).map_err(|_| InviteError::Malformed)?);
        Ok(derive_psk(&key, b"short", self.slot))
    }
}

/// The psk of a QR invite: derived from its 256-bit secret, no SPAKE2 needed.
pub fn qr_psk(secret: &InviteSecret, slot: u32) -> PairingPsk {
    derive_psk(secret.expose(), b"qr", slot)
}

/// `HKDF-SHA256(ikm, info = "0k-sync pairing psk v1" || path || slot)`.
fn derive_psk(ikm: &[u8], path: &[u8], slot: u32) -> PairingPsk {
    let mut info = PSK_LABEL.to_vec();
    info.extend_from_slice(path);
    info.extend_from_slice(&slot.to_be_bytes());
    PairingPsk::from_bytes(*crate::crypto::hkdf_sha256_32(None, ikm, &info))
}

/// The SPAKE2 identity: `"0k-sync/pair/v1" || slot (u32 BE)`.
fn identity_bytes(slot: u32) -> Vec<u8> {
    let mut id = IDENTITY_LABEL.to_vec();
    id.extend_from_slice(&slot.to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_code_same_psk_different_code_different_psk() {
        let mut rng = CoreRng::from_seed([1; 32]);
        let code = ShortCode::from_parts(42, 123_456_789).unwrap();
        let (a, ma) = SpakeExchange::start(&code, &mut rng);
        let (b, mb) = SpakeExchange::start(&code, &mut rng);
        assert_eq!(a.finish(&mb).unwrap(), b.finish(&ma).unwrap());

        let wrong = ShortCode::from_parts(42, 123_456_788).unwrap();
        let (a, ma) = SpakeExchange::start(&code, &mut rng);
        let (b, mb) = SpakeExchange::start(&wrong, &mut rng);
        assert_ne!(a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
    }

    #[test]
    fn reflection_and_garbage_are_refused() {
        let mut rng = CoreRng::from_seed([2; 32]);
        let code = ShortCode::from_parts(7, 7).unwrap();
        let (a, ma) = SpakeExchange::start(&code, &mut rng);
        assert_eq!(a.finish(&ma).unwrap_err(), InviteError::Reflected);
        let (a, _) = SpakeExchange::start(&code, &mut rng);
        assert_eq!(a.finish(b"short").unwrap_err(), InviteError::Malformed);
    }
}
