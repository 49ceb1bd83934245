use super::CodecError;
use super::frame::{FRAME_HEADER_LEN, Frame, decode_frame_body, parse_header};
use super::record::decode_record;

/// A growable input buffer with a read position, compacted lazily.
#[derive(Debug, Default)]
struct InBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl InBuf {
    fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

/// Splits a byte stream, fed in chunks of any size, into records.
#[derive(Debug)]
pub struct RecordReader {
    input: InBuf,
    cap: usize,
    failed: Option<CodecError>,
}

impl RecordReader {
    /// A reader that rejects records longer than `cap` bytes (at most 65,535).
    pub fn new(cap: usize) -> Self {
        RecordReader { input: InBuf::default(), cap, failed: None }
    }

    /// Lowers or raises the cap (e.g. once a handshake is over).
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.push(bytes);
    }

    /// The next complete record, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable and the same error is returned again.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match decode_record(self.input.pending(), self.cap) {
            Ok(Some((body, used))) => {
                let body = body.to_vec();
                self.input.consume(used);
                Ok(Some(body))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Bytes received but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.input.pending().len()
    }

    /// Removes and returns the bytes not yet returned as records (e.g. the first transport
    /// records that arrived with the last handshake message).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.input.pending().to_vec();
        self.input = InBuf::default();
        rest
    }
}

/// Splits a decrypted byte stream, fed in chunks of any size, into frames. A frame's declared
/// length is checked against the cap as soon as its header is complete.
#[derive(Debug, Default)]
pub struct Deframer {
    input: InBuf,
    failed: Option<CodecError>,
}

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds decrypted bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.push(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable and the same error is returned again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.try_next();
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn try_next(&mut self) -> Result<Option<Frame>, CodecError> {
        let pending = self.input.pending();
        let Some((ty, len)) = parse_header(pending)? else {
            return Ok(None);
        };
        let Some(body) = pending.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            return Ok(None);
        };
        let frame = decode_frame_body(ty, body)?;
        self.input.consume(FRAME_HEADER_LEN + len);
        Ok(Some(frame))
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.input.pending().len()
    }
}
