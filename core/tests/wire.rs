//! The record and frame codec: round trips, exact lengths, any chunking, and clear errors on
//! truncated, oversized, trailing, non-canonical and unknown input.

mod support;

use proptest::prelude::*;
use support::{any_frame, sample_frames};
use zerok_core::wire::*;

#[test]
fn every_frame_type_has_a_sample() {
    let types: Vec<FrameType> = sample_frames().iter().map(Frame::frame_type).collect();
    assert_eq!(types, FrameType::ALL);
}

proptest! {
    #[test]
    fn frames_round_trip_with_exact_length(frame in any_frame()) {
        let bytes = frame.to_bytes().unwrap();
        prop_assert_eq!(frame.encoded_len().unwrap(), bytes.len());
        let decoded = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &frame);
        prop_assert_eq!(decoded.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn deframer_accepts_any_chunking(frames in proptest::collection::vec(any_frame(), 1..6), cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut stream = Vec::new();
        for f in &frames {
            f.encode(&mut stream).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut d = Deframer::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            d.push(&stream[w[0]..w[1]]);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn truncated_frames_are_refused(frame in any_frame(), cut in any::<usize>()) {
        let bytes = frame.to_bytes().unwrap();
        let cut = cut % bytes.len();
        prop_assert!(Frame::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn records_round_trip_in_any_chunking(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5), step in 1usize..50) {
        let mut stream = Vec::new();
        for b in &bodies {
            encode_record(b, &mut stream).unwrap();
        }
        let mut r = RecordReader::new(MAX_RECORD_LEN);
        let mut out = Vec::new();
        for chunk in stream.chunks(step) {
            r.push(chunk);
            while let Some(rec) = r.next_record().unwrap() {
                out.push(rec);
            }
        }
        prop_assert_eq!(out, bodies);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Frame::decode(&data);
        let mut d = Deframer::new();
        d.push(&data);
        while let Ok(Some(_)) = d.next_frame() {}
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = Frame::Ping(Ping { nonce: 1 }).to_bytes().unwrap();
    bytes.push(0);
    assert_eq!(Frame::decode(&bytes), Err(CodecError::TrailingBytes));
    // A body longer than its value, with the header length covering it.
    let mut lying = Frame::Ping(Ping { nonce: 1 }).to_bytes().unwrap();
    lying.push(0);
    lying[5] += 1;
    assert_eq!(Frame::decode(&lying), Err(CodecError::TrailingBytes));
}

#[test]
fn overlong_varints_are_refused_as_non_canonical() {
    // Ping { nonce: 1 } with nonce written as the two-byte varint 0x81 0x00.
    let bytes = [WIRE_VERSION, FrameType::Ping as u8, 0, 0, 0, 2, 0x81, 0x00];
    assert_eq!(Frame::decode(&bytes), Err(CodecError::NonCanonical));
}

#[test]
fn header_errors_are_precise() {
    assert_eq!(Frame::decode(&[]), Err(CodecError::Truncated));
    assert_eq!(Frame::decode(&[9, 18, 0, 0, 0, 1, 0]), Err(CodecError::UnsupportedVersion(9)));
    assert_eq!(Frame::decode(&[1, 0, 0, 0, 0, 0]), Err(CodecError::UnknownType(0)));
    assert_eq!(Frame::decode(&[1, 200, 0, 0, 0, 0]), Err(CodecError::UnknownType(200)));
    assert_eq!(Frame::decode(&[1, 18, 0, 0, 0, 1, 2]), Ok(Frame::Ping(Ping { nonce: 2 })));
    assert_eq!(Frame::decode(&[1, 20, 0, 0, 0, 1, 9]), Err(CodecError::Malformed), "unknown enum value");
    // Blobs { after: 0, prev_chain: [0; 32], blobs: [], has_more: 2 (!), max_cursor: 0 }.
    let mut blobs = vec![1, 6, 0, 0, 0, 36, 0];
    blobs.extend([0; 32]);
    blobs.extend([0, 2, 0]);
    assert_eq!(Frame::decode(&blobs), Err(CodecError::Malformed), "bool must be 0 or 1");
}

#[test]
fn oversized_frames_are_refused_from_the_header_alone() {
    let cap = MAX_FRAME_BODY as u32;
    let header = |len: u32| {
        let mut h = vec![WIRE_VERSION, FrameType::Push as u8];
        h.extend_from_slice(&len.to_be_bytes());
        h
    };
    let mut d = Deframer::new();
    d.push(&header(cap + 1));
    assert_eq!(d.next_frame(), Err(CodecError::TooLarge(cap + 1)));
    assert_eq!(d.next_frame(), Err(CodecError::TooLarge(cap + 1)), "errors are sticky");
    let mut d = Deframer::new();
    d.push(&header(u32::MAX));
    assert_eq!(d.next_frame(), Err(CodecError::TooLarge(u32::MAX)));
    let mut d = Deframer::new();
    d.push(&header(cap));
    assert_eq!(d.next_frame(), Ok(None), "at the cap, the deframer waits for the body");

    let big = Frame::Push(Push { push_id: [0; 16], envelope: Bytes(vec![0; MAX_FRAME_BODY]) });
    assert!(matches!(big.to_bytes(), Err(CodecError::TooLarge(_))));
}

#[test]
fn record_reader_enforces_its_cap_before_buffering() {
    let mut r = RecordReader::new(1024);
    r.push(&[0x04, 0x01]);
    assert_eq!(r.next_record(), Err(CodecError::TooLarge(1025)));
    let mut r = RecordReader::new(1024);
    r.push(&[0x04, 0x00]);
    assert_eq!(r.next_record(), Ok(None));
}
