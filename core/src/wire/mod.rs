//! The wire format: length-prefixed records carrying Noise messages, and frames (a fixed
//! header plus a postcard body) carried in the decrypted record stream.

mod bytes;
mod error;
mod frame;
mod messages;
mod reader;
mod record;

pub use bytes::Bytes;
pub use error::CodecError;
pub use frame::{FRAME_HEADER_LEN, Frame, FrameType, MAX_FRAME_BODY, WIRE_VERSION};
pub use messages::*;
pub use reader::{Deframer, RecordReader};
pub use record::{MAX_RECORD_LEN, RECORD_HEADER_LEN, encode_record};

pub(crate) use frame::decode_canonical;
