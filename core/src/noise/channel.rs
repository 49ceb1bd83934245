use super::{Session, SessionError};
use crate::wire::{CodecError, Deframer, Frame, MAX_RECORD_LEN, RecordReader};

/// Why a channel stopped: the peer sent something unacceptable. The connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The record or frame layer rejected the bytes.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// A record failed authentication.
    #[error("session: {0}")]
    Session(#[from] SessionError),
}

/// Frames over an established session: bytes from the wire in (any chunking), frames out;
/// frames in, record bytes for the wire out. Frames larger than one record span several.
#[derive(Debug)]
pub struct Channel {
    session: Session,
    records: RecordReader,
    frames: Deframer,
}

impl Channel {
    /// A channel over `session`, with `leftover` bytes already read past the handshake.
    pub fn new(session: Session, leftover: &[u8]) -> Self {
        let mut records = RecordReader::new(MAX_RECORD_LEN);
        records.push(leftover);
        Channel { session, records, frames: Deframer::new() }
    }

    /// The underlying session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Adds bytes received from the wire.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.records.push(bytes);
    }

    /// The next complete frame, or `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ChannelError> {
        loop {
            if let Some(frame) = self.frames.next_frame()? {
                return Ok(Some(frame));
            }
            let Some(record) = self.records.next_record()? else {
                return Ok(None);
            };
            let plaintext = self.session.decrypt(&record)?;
            self.frames.push(&plaintext);
        }
    }

    /// Encodes, encrypts and appends `frame` to `out` as records.
    pub fn send(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), ChannelError> {
        let plain = frame.to_bytes()?;
        self.session.seal_stream(&plain, out)?;
        Ok(())
    }

    /// Bytes buffered on the receive side (records not yet decrypted plus partial frames).
    pub fn buffered(&self) -> usize {
        self.records.buffered() + self.frames.buffered()
    }
}
