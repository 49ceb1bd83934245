//! Entry points for the cargo-fuzz targets in `fuzz/`: one per parser of untrusted bytes.
//! Each must never panic; where decoding succeeds, re-encoding must give the same bytes.

use crate::CoreRng;
use crate::envelope::BlobCipher;
use crate::invite::{QrInvite, ShortCode};
use crate::keys::{EpochSecret, GroupId, NoiseKeypair, NoiseSecret};
use crate::noise::{IkResponder, ik_prologue};
use crate::wire::{Deframer, Frame, MAX_RECORD_LEN, RecordReader, encode_record};

/// Records: decode a stream; every record re-encodes to the bytes it came from.
pub fn record_decode(data: &[u8]) {
    let mut reader = RecordReader::new(MAX_RECORD_LEN);
    reader.push(data);
    let mut offset = 0usize;
    while let Ok(Some(record)) = reader.next_record() {
        let mut again = Vec::new();
        assert!(encode_record(&record, &mut again).is_ok());
        assert_eq!(data.get(offset..offset + again.len()), Some(again.as_slice()));
        offset += again.len();
    }
}

/// One frame: whatever decodes re-encodes to the same bytes, with the predicted length.
pub fn frame_decode(data: &[u8]) {
    if let Ok(frame) = Frame::decode(data) {
        let again = frame.to_bytes();
        assert_eq!(again.as_deref(), Ok(data));
        assert_eq!(frame.encoded_len(), Ok(data.len()));
    }
}

/// A frame stream split at points chosen by the input: the frames must not depend on how
/// the stream was chunked.
pub fn deframer(data: &[u8]) {
    let Some((&splits, stream)) = data.split_first() else {
        return;
    };
    let whole = drain(&[stream]);
    let step = usize::from(splits).max(1);
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    assert_eq!(drain(&chunks), whole);
}

fn drain(chunks: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut d = Deframer::new();
    let mut frames = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    (frames, failed)
}

/// Envelopes under a fixed key: must be refused cleanly (the fuzzer cannot forge a tag).
pub fn envelope_open(data: &[u8]) {
    let group = GroupId::from_bytes([1; 32]);
    let cipher = BlobCipher::new(&group, 0, &EpochSecret::from_bytes([2; 32]));
    let _ = cipher.open(data);
}

/// QR invite text and binary: whatever parses re-encodes to the same binary.
pub fn qr_payload_parse(data: &[u8]) {
    if let Ok(invite) = QrInvite::from_bytes(data) {
        let again = invite.to_bytes();
        assert_eq!(again.as_ref().map(|b| b.as_slice()), Ok(data));
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(invite) = QrInvite::from_text(text)
    {
        let again = invite.to_text();
        assert!(again.is_ok());
        let reparsed = again.map(|t| QrInvite::from_text(&t));
        assert_eq!(reparsed, Ok(Ok(invite)));
    }
}

/// Short codes: whatever parses displays as a code that parses to the same value.
pub fn short_code_parse(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = ShortCode::parse(text) {
        assert_eq!(ShortCode::parse(&code.display()), Ok(code));
    }
}

/// The relay's IK responder on an arbitrary first message.
pub fn handshake_responder(data: &[u8]) {
    let mut rng = CoreRng::from_seed([3; 32]);
    let relay = NoiseKeypair::from_secret(NoiseSecret::from_bytes([4; 32]));
    let prologue = ik_prologue(&[5; 32], &[6; 32]);
    if let Ok(responder) = IkResponder::read_first(&mut rng, &relay, &prologue, data) {
        let _ = responder.accept();
    }
}

/// The relay's HTTP request head: never panics; a path never keeps its query or whitespace; a
/// found end is just past a blank line.
pub fn http_request_head(data: &[u8]) {
    let head = crate::http_head::RequestHead::parse(data);
    assert!(!head.path.contains('?') && !head.path.contains(char::is_whitespace));
    assert!(!head.method.contains(char::is_whitespace));
    let _ = head.websocket_key();
    if let Some(end) = crate::http_head::head_end(data) {
        assert!(data.get(..end).is_some_and(|h| h.ends_with(b"\r\n\r\n")));
    }
}
