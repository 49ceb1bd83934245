use subtle::ConstantTimeEq;

use super::ik::{into_session, read, remote_static, write};
use super::{HandshakeError, Session, XX_PATTERN, build};
use crate::CoreRng;
use crate::keys::{NoiseKeypair, NoisePublic, PairingPsk};

/// Which side of a pairing handshake this device plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairingRole {
    /// The joining device: sends messages 1 and 3.
    Joiner,
    /// The inviting device: sends message 2 (revealing its static key, which a QR joiner pins).
    Inviter,
}

/// One `Noise_XXpsk3` pairing handshake, three messages carried in relay slot messages.
pub struct PairingHandshake {
    state: snow::HandshakeState,
    pinned: Option<NoisePublic>,
}

impl core::fmt::Debug for PairingHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PairingHandshake").field("pinned", &self.pinned).finish_non_exhaustive()
    }
}

impl PairingHandshake {
    /// A handshake for `role` with this device's static key and the pairing psk. A joiner
    /// using a QR invite passes the inviter's key as `pinned`.
    pub fn new(
        rng: &mut CoreRng,
        role: PairingRole,
        local: &NoiseKeypair,
        psk: &PairingPsk,
        prologue: &[u8],
        pinned: Option<NoisePublic>,
    ) -> Result<Self, HandshakeError> {
        Self::new_inner(rng, role, local, psk, prologue, pinned, None)
    }

    pub(crate) fn new_inner(
        rng: &mut CoreRng,
        role: PairingRole,
        local: &NoiseKeypair,
        psk: &PairingPsk,
        prologue: &[u8],
        pinned: Option<NoisePublic>,
        fixed_ephemeral: Option<&[u8]>,
    ) -> Result<Self, HandshakeError> {
        let mut builder = build(XX_PATTERN, rng)?
            .local_private_key(local.secret().expose())
            .and_then(|b| b.psk(3, psk.expose()))
            .and_then(|b| b.prologue(prologue))
            .map_err(|_| HandshakeError::Malformed)?;
        if let Some(e) = fixed_ephemeral {
            builder = builder.fixed_ephemeral_key_for_testing_only(e);
        }
        let state = match role {
            PairingRole::Joiner => builder.build_initiator(),
            PairingRole::Inviter => builder.build_responder(),
        }
        .map_err(|_| HandshakeError::Malformed)?;
        Ok(PairingHandshake { state, pinned })
    }

    /// Writes the next handshake message carrying `payload`.
    pub fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        write(&mut self.state, payload)
    }

    /// Reads the peer's next handshake message; checks the pinned key as soon as it is known.
    pub fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let payload = read(&mut self.state, message)?;
        if let (Some(pinned), Some(remote)) = (self.pinned, self.state.get_remote_static())
            && !bool::from(pinned.0.ct_eq(remote))
        {
            return Err(HandshakeError::PinnedKeyMismatch);
        }
        Ok(payload)
    }

    /// The handshake is complete.
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Completes the handshake: the transport session, the peer's static key, and the 6-digit
    /// confirmation code both screens can show.
    pub fn finish(self) -> Result<(Session, NoisePublic, String), HandshakeError> {
        if !self.state.is_handshake_finished() {
            return Err(HandshakeError::OutOfOrder);
        }
        let remote = remote_static(&self.state)?;
        let session = into_session(self.state)?;
        let code = confirmation_code(session.handshake_hash());
        Ok((session, remote, code))
    }
}

/// Six decimal digits derived from a handshake hash: equal on both devices exactly when they
/// ran the same handshake with each other.
pub fn confirmation_code(handshake_hash: &[u8; 32]) -> String {
    let derived = blake3::derive_key("0k-sync pairing confirmation code v1", handshake_hash);
    let mut first = [0u8; 8];
    first.copy_from_slice(derived.get(..8).unwrap_or(&[0; 8]));
    format!("{:06}", u64::from_be_bytes(first) % 1_000_000)
}
