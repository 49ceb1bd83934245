use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CodecError;
use super::messages::*;
use super::record::clamp_u32;

/// The frame wire version this build speaks.
pub const WIRE_VERSION: u8 = 1;
/// Bytes of the fixed frame header: version (u8), type (u8), body length (u32 BE).
pub const FRAME_HEADER_LEN: usize = 6;
/// The largest frame body accepted: room for one maximal envelope page (2 MiB).
pub const MAX_FRAME_BODY: usize = 2 * 1024 * 1024;

macro_rules! frames {
    ($($code:literal => $variant:ident($body:ty),)*) => {
        /// The type byte of a frame header.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum FrameType {
            $(
                #[doc = concat!("Carries [`", stringify!($body), "`].")]
                $variant = $code,
            )*
        }

        impl FrameType {
            /// Every frame type, in wire order.
            pub const ALL: &'static [FrameType] = &[$(FrameType::$variant,)*];

            /// The frame type of a header byte.
            pub fn from_u8(b: u8) -> Result<Self, CodecError> {
                match b {
                    $($code => Ok(FrameType::$variant),)*
                    other => Err(CodecError::UnknownType(other)),
                }
            }
        }

        /// A protocol frame: what travels inside the encrypted record stream.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(missing_docs, reason = "each variant carries the documented body of the same name")]
        pub enum Frame {
            $($variant($body),)*
        }

        impl Frame {
            /// This frame's type byte.
            pub fn frame_type(&self) -> FrameType {
                match self { $(Frame::$variant(_) => FrameType::$variant,)* }
            }

            fn body_len(&self) -> Result<usize, CodecError> {
                match self { $(Frame::$variant(b) => body_len(b),)* }
            }

            fn write_body(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
                match self { $(Frame::$variant(b) => write_body(b, out),)* }
            }

            fn read_body(ty: FrameType, body: &[u8]) -> Result<Self, CodecError> {
                match ty { $(FrameType::$variant => decode_canonical(body).map(Frame::$variant),)* }
            }
        }
    };
}

frames! {
    1 => Hello(Hello),
    2 => Welcome(Welcome),
    3 => Push(Push),
    4 => PushAck(PushAck),
    5 => Pull(Pull),
    6 => Blobs(Blobs),
    7 => Notify(Notify),
    8 => Ack(Ack),
    9 => RegisterDevice(RegisterDevice),
    10 => DeviceRegistered(DeviceRegistered),
    11 => SlotRegister(SlotRegister),
    12 => SlotRegistered(SlotRegistered),
    13 => SlotOpen(SlotOpen),
    14 => SlotMessage(SlotMessage),
    15 => SlotClose(SlotClose),
    16 => Truncated(Truncated),
    17 => Error(ErrorFrame),
    18 => Ping(Ping),
    19 => Pong(Pong),
    20 => Bye(Bye),
}

impl Frame {
    /// Exact number of bytes [`Frame::encode`] appends.
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        Ok(FRAME_HEADER_LEN + self.body_len()?)
    }

    /// Appends header and body to `out`. Fails only if the body exceeds [`MAX_FRAME_BODY`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let len = self.body_len()?;
        if len > MAX_FRAME_BODY {
            return Err(CodecError::TooLarge(clamp_u32(len)));
        }
        out.reserve(FRAME_HEADER_LEN + len);
        out.push(WIRE_VERSION);
        out.push(self.frame_type() as u8);
        out.extend_from_slice(&clamp_u32(len).to_be_bytes());
        self.write_body(out)
    }

    /// The encoding as a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes exactly one frame occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Frame, CodecError> {
        let (ty, body_len) = parse_header(bytes)?.ok_or(CodecError::Truncated)?;
        let body = bytes.get(FRAME_HEADER_LEN..).ok_or(CodecError::Truncated)?;
        match body.len().cmp(&body_len) {
            core::cmp::Ordering::Less => Err(CodecError::Truncated),
            core::cmp::Ordering::Greater => Err(CodecError::TrailingBytes),
            core::cmp::Ordering::Equal => Frame::read_body(ty, body),
        }
    }
}

/// Parses a frame header at the start of `buf`: `Ok(None)` if it is incomplete. The length is
/// checked against [`MAX_FRAME_BODY`] before anything else is read.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(FrameType, usize)>, CodecError> {
    let Some(&[version, ty, l0, l1, l2, l3]) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    if version != WIRE_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let ty = FrameType::from_u8(ty)?;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let len_usize = usize::try_from(len).map_err(|_| CodecError::TooLarge(len))?;
    if len_usize > MAX_FRAME_BODY {
        return Err(CodecError::TooLarge(len));
    }
    Ok(Some((ty, len_usize)))
}

pub(crate) fn decode_frame_body(ty: FrameType, body: &[u8]) -> Result<Frame, CodecError> {
    Frame::read_body(ty, body)
}

fn body_len<T: Serialize>(body: &T) -> Result<usize, CodecError> {
    postcard::experimental::serialized_size(body).map_err(|_| CodecError::Malformed)
}

fn write_body<T: Serialize>(body: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let taken = core::mem::take(out);
    *out = postcard::to_extend(body, taken).map_err(|_| CodecError::Malformed)?;
    Ok(())
}

/// Decodes a postcard value that must occupy all of `bytes` in its canonical encoding
/// (postcard itself accepts overlong varints; re-measuring the value rejects them).
pub(crate) fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => CodecError::Truncated,
        _ => CodecError::Malformed,
    })?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes);
    }
    if body_len(&value)? != bytes.len() {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}
