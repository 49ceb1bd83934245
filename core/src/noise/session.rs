use thiserror::Error;

use super::TAG_LEN;
use crate::wire::{MAX_RECORD_LEN, encode_record};

/// Largest plaintext carried by one Noise transport message (65,535 − 16 bytes).
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD_LEN - TAG_LEN;
/// Each direction switches to a fresh key (Noise `REKEY`) after this many messages.
pub const REKEY_INTERVAL: u64 = 1 << 16;

/// Why a transport message could not be processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The message failed authentication; the session state is unchanged.
    #[error("transport message rejected")]
    Rejected,
    /// The nonce space is exhausted; the connection must be re-established.
    #[error("session exhausted")]
    Exhausted,
}

/// An established Noise transport: encrypts outgoing byte streams into records and decrypts
/// incoming records, rekeying each direction every [`REKEY_INTERVAL`] messages.
pub struct Session {
    transport: snow::TransportState,
    handshake_hash: [u8; 32],
    sent: u64,
    received: u64,
    rekey_every: u64,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session").field("sent", &self.sent).field("received", &self.received).finish()
    }
}

impl Session {
    pub(crate) fn new(transport: snow::TransportState, handshake_hash: [u8; 32]) -> Self {
        Session { transport, handshake_hash, sent: 0, received: 0, rekey_every: REKEY_INTERVAL }
    }

    #[cfg(test)]
    pub(crate) fn set_rekey_interval(&mut self, every: u64) {
        self.rekey_every = every.max(1);
    }

    /// The handshake hash, unique to this session (channel binding).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// The peer's static public key.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.transport.get_remote_static().and_then(|k| k.try_into().ok())
    }

    /// Encrypts one message of at most [`MAX_RECORD_PLAINTEXT`] bytes.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut msg = vec![0u8; plaintext.len() + TAG_LEN];
        let n = self.transport.write_message(plaintext, &mut msg).map_err(|_| SessionError::Exhausted)?;
        msg.truncate(n);
        self.sent += 1;
        if self.sent.is_multiple_of(self.rekey_every) {
            self.transport.rekey_outgoing();
        }
        Ok(msg)
    }

    /// Decrypts one message. A rejected message leaves the session as it was, so a later
    /// genuine message still decrypts.
    pub fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>, SessionError> {
        if message.len() < TAG_LEN || message.len() > MAX_RECORD_LEN {
            return Err(SessionError::Rejected);
        }
        let mut out = vec![0u8; message.len() - TAG_LEN];
        let n = self.transport.read_message(message, &mut out).map_err(|e| match e {
            snow::Error::State(snow::error::StateProblem::Exhausted) => SessionError::Exhausted,
            _ => SessionError::Rejected,
        })?;
        out.truncate(n);
        self.received += 1;
        if self.received.is_multiple_of(self.rekey_every) {
            self.transport.rekey_incoming();
        }
        Ok(out)
    }

    /// Encrypts a byte stream of any length into as many records as it needs, appended to `out`.
    pub fn seal_stream(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SessionError> {
        for chunk in plaintext.chunks(MAX_RECORD_PLAINTEXT) {
            let msg = self.encrypt(chunk)?;
            encode_record(&msg, out).map_err(|_| SessionError::Rejected)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoreRng;
    use crate::keys::{GroupId, NoiseKeypair};
    use crate::noise::{ClientAuth, IkInitiator, IkResponder, Intent};

    fn sessions() -> (Session, Session) {
        let mut rng = CoreRng::from_seed([1; 32]);
        let access = NoiseKeypair::generate(&mut rng);
        let relay = NoiseKeypair::generate(&mut rng);
        let auth = ClientAuth::new(&GroupId::from_bytes([0; 32]), 1, Intent::Member);
        let (init, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), b"p", &auth).unwrap();
        let (resp, m2) = IkResponder::read_first(&mut rng, &relay, b"p", &m1).unwrap().accept().unwrap();
        (init.finish(&m2).unwrap(), resp)
    }

    #[test]
    fn rekey_changes_the_key_at_the_interval() {
        let (mut a, mut b) = sessions();
        a.set_rekey_interval(3);
        b.set_rekey_interval(3);
        for i in 0..10u8 {
            let ct = a.encrypt(&[i]).unwrap();
            assert_eq!(b.decrypt(&ct).unwrap(), [i]);
        }
        // A receiver that does not rekey fails exactly at the first message after the interval.
        let (mut a, mut b) = sessions();
        a.set_rekey_interval(3);
        b.set_rekey_interval(1000);
        for i in 0..3u8 {
            let ct = a.encrypt(&[i]).unwrap();
            assert_eq!(b.decrypt(&ct).unwrap(), [i]);
        }
        let ct = a.encrypt(&[3]).unwrap();
        assert_eq!(b.decrypt(&ct), Err(SessionError::Rejected));
    }

    #[test]
    fn streams_split_at_the_record_limit() {
        let (mut a, _) = sessions();
        let mut out = Vec::new();
        a.seal_stream(&vec![0u8; MAX_RECORD_PLAINTEXT + 1], &mut out).unwrap();
        assert_eq!(out.len(), 2 * (2 + TAG_LEN) + MAX_RECORD_PLAINTEXT + 1);
        assert_eq!(&out[..2], &[0xFF, 0xFF]);
    }
}
