//! Identifiers shared by the client and relay state machines and their drivers.

/// One transport connection, numbered by whoever opened it (the relay driver for accepted
/// connections, the client for the ones it asks to open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// One store operation; its completion comes back with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No space left: nothing was written.
    #[error("storage is full")]
    Full,
    /// Any other failure: nothing was written.
    #[error("storage failed")]
    Io,
}
