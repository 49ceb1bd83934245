//! Noise sessions: `Noise_IK_25519_ChaChaPoly_BLAKE2s` from a device to its relay, and
//! `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` between two devices pairing through a relay slot.

mod channel;
mod ik;
mod replay;
mod session;
mod xx;

#[cfg(test)]
mod vectors;

pub use channel::{Channel, ChannelError};
pub use ik::{ClientAuth, IkInitiator, IkResponder, Intent, ik_prologue};
pub use replay::ReplayGuard;
pub use session::{MAX_RECORD_PLAINTEXT, REKEY_INTERVAL, Session, SessionError};
pub use xx::{PairingHandshake, PairingRole, confirmation_code};

use thiserror::Error;

/// Noise pattern from a device to its relay.
pub const IK_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Noise pattern between two pairing devices.
pub const XX_PATTERN: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// Protocol version carried in prologues and the IK payload.
pub const PROTOCOL_VERSION: u16 = 1;
/// Size of the AEAD tag on every Noise message.
pub const TAG_LEN: usize = 16;

/// Why a handshake failed. Locally precise; a remote peer only ever sees the connection close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A handshake message failed to decrypt or authenticate, or had the wrong size.
    #[error("handshake message rejected")]
    Rejected,
    /// The handshake payload is not valid.
    #[error("malformed handshake payload")]
    Malformed,
    /// The peer's static key is not the pinned one.
    #[error("peer key does not match the pinned key")]
    PinnedKeyMismatch,
    /// The initiator's timestamp is not newer than the last one accepted for its key.
    #[error("replayed or stale handshake")]
    Replay,
    /// The peer speaks a protocol version we do not.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// A message came out of turn.
    #[error("handshake message out of order")]
    OutOfOrder,
}

fn build(pattern: &str, rng: &mut crate::CoreRng) -> Result<snow::Builder<'static>, HandshakeError> {
    let params = pattern.parse().map_err(|_| HandshakeError::Malformed)?;
    Ok(snow::Builder::with_resolver(params, crate::rng::SeededResolver::new(rng)))
}
