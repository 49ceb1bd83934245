//! The plugin's errors. They reach JavaScript as `{ kind, message }`.

use serde::{Serialize, Serializer};
use zerok_transport_iroh::ClientError;

use crate::models::SyncError;

/// The plugin's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plugin's configuration is missing or wrong.
    #[error("sync is not configured: {0}")]
    Config(String),
    /// `push` was given no bytes.
    #[error("nothing to push: the blob is empty")]
    EmptyData,
    /// A command's arguments could not be read.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The sync client refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl Error {
    /// A stable name for the kind of failure, for apps to branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::EmptyData => "emptyData",
            Error::BadRequest(_) => "badRequest",
            Error::Client(e) => client_kind(e),
        }
    }

    /// The `{ kind, message }` form JavaScript receives.
    pub fn to_sync_error(&self) -> SyncError {
        SyncError { kind: self.kind().to_owned(), message: self.to_string() }
    }
}

fn client_kind(error: &ClientError) -> &'static str {
    match error {
        ClientError::Io(_) | ClientError::Db(_) => "storage",
        ClientError::Net(_) => "network",
        ClientError::Command(e) => e.kind(),
        ClientError::Pairing(f) => f.kind(),
        ClientError::Timeout(_) => "timeout",
        ClientError::Stopped => "stopped",
    }
}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_sync_error().serialize(serializer)
    }
}
