use super::CodecError;

/// Bytes of the record length prefix (big-endian u16).
pub const RECORD_HEADER_LEN: usize = 2;
/// The largest record body: one Noise message.
pub const MAX_RECORD_LEN: usize = 65_535;

/// Appends `body` to `out` as one record: `u16 BE length || body`.
pub fn encode_record(body: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let len = u16::try_from(body.len()).map_err(|_| CodecError::TooLarge(clamp_u32(body.len())))?;
    out.reserve(RECORD_HEADER_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Decodes one record at the start of `buf`: `Ok(None)` if more bytes are needed, otherwise
/// the body and the number of bytes consumed. `cap` bounds the body length and is checked
/// before anything is buffered.
pub(crate) fn decode_record(buf: &[u8], cap: usize) -> Result<Option<(&[u8], usize)>, CodecError> {
    let Some(&[hi, lo]) = buf.get(..RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > cap {
        return Err(CodecError::TooLarge(clamp_u32(len)));
    }
    let end = RECORD_HEADER_LEN + len;
    Ok(buf.get(RECORD_HEADER_LEN..end).map(|body| (body, end)))
}

pub(crate) fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial() {
        let mut out = Vec::new();
        encode_record(b"abc", &mut out).unwrap();
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
        assert_eq!(decode_record(&out, MAX_RECORD_LEN).unwrap(), Some((&b"abc"[..], 5)));
        for cut in 0..out.len() {
            assert_eq!(decode_record(&out[..cut], MAX_RECORD_LEN).unwrap(), None);
        }
    }

    #[test]
    fn caps_are_checked_on_the_prefix_alone() {
        assert_eq!(decode_record(&[0x01, 0x00], 255), Err(CodecError::TooLarge(256)));
        assert_eq!(decode_record(&[0x00, 0xFF], 255), Ok(None));
        let big = vec![0u8; MAX_RECORD_LEN + 1];
        assert_eq!(encode_record(&big, &mut Vec::new()), Err(CodecError::TooLarge(65_536)));
    }
}
