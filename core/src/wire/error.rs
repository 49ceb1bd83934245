use thiserror::Error;

/// Why bytes could not be decoded as a record or frame. Small and `Copy` so that hot paths
/// and fuzzers can return it freely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before the structure did.
    #[error("truncated input")]
    Truncated,
    /// A length prefix exceeds the cap for this context.
    #[error("length {0} exceeds the cap")]
    TooLarge(u32),
    /// The frame header names a wire version we do not speak.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// The frame header names an unknown frame type.
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    /// The body is not a valid postcard encoding of the frame's type.
    #[error("malformed frame body")]
    Malformed,
    /// Bytes remain after a complete structure.
    #[error("trailing bytes after a complete structure")]
    TrailingBytes,
    /// The body decodes but is not the canonical encoding of its value.
    #[error("non-canonical encoding")]
    NonCanonical,
}
