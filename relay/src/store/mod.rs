//! Where the relay keeps groups, keys, blobs and acknowledgements. Two backends under one
//! contract ([`RelayStore`]): the embedded SQLite store, the default (`relay.db` in the data
//! dir), and PostgreSQL (`--store postgres://…`). Both execute core's [`RelayStoreOp`]s many
//! per transaction (group commit), each operation in its own savepoint so a refused one leaves
//! no trace, and report a result only after its transaction committed.

mod postgres;
mod sqlite;

#[cfg(test)]
mod contract;

use std::path::Path;

use zerok_core::relay::{ChainRepair, GroupSnapshot, RelayStoreOp, RelayStoreResult};

pub use postgres::{PostgresStore, listen};
pub use sqlite::SqliteStore;

/// What a relay's store does, whatever the backend.
pub trait RelayStore: Send {
    /// Executes operations in one transaction, in order.
    fn execute(&mut self, ops: &[RelayStoreOp]) -> Batch;
    /// Checks every group's log chain, row by row, and repairs a log damaged at rest (rows
    /// deleted or altered while no relay ran): see [`zerok_core::relay::ChainCheck`]. Returns
    /// each repair made, for the operator's log. Reads every stored blob once.
    fn repair_chains(&mut self) -> Result<Vec<([u8; 32], ChainRepair)>, StoreOpenError>;
    /// What the relay loads at start.
    fn snapshots(&mut self) -> Result<Vec<GroupSnapshot>, StoreOpenError>;
}

/// The outcome of one batch: each operation's result, and whether the commit itself failed
/// (then every write in the batch is reported failed and the relay must stop).
pub struct Batch {
    /// Results, in the order of the operations.
    pub results: Vec<RelayStoreResult>,
    /// The commit failed: the store can no longer be trusted.
    pub fatal: Option<String>,
}

/// Which backend, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// `relay.db` in the data dir.
    #[default]
    Sqlite,
    /// A PostgreSQL connection URL (`postgres://user@host:port/db`; libpq's key=value form too).
    Postgres(String),
}

impl std::str::FromStr for StoreLocation {
    type Err = StoreOpenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite" {
            Ok(StoreLocation::Sqlite)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=") {
            Ok(StoreLocation::Postgres(s.to_owned()))
        } else {
            Err(StoreOpenError(format!("store {s:?}: expected `sqlite` or a postgres:// URL")))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    /// Without a password, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite => f.write_str("sqlite"),
            StoreLocation::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
}

/// A store that could not be opened, migrated or read at start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreOpenError(pub String);

impl From<rusqlite::Error> for StoreOpenError {
    fn from(e: rusqlite::Error) -> Self {
        StoreOpenError(format!("relay database: {e}"))
    }
}

impl From<::postgres::Error> for StoreOpenError {
    fn from(e: ::postgres::Error) -> Self {
        StoreOpenError(format!("relay database (PostgreSQL): {e}"))
    }
}

/// Opens (creating or migrating it) the store at `location`. Blocking: call it off the async
/// runtime (the PostgreSQL client runs its own).
pub fn open(location: &StoreLocation, data_dir: &Path) -> Result<Box<dyn RelayStore>, StoreOpenError> {
    Ok(match location {
        StoreLocation::Sqlite => Box::new(SqliteStore::open(&data_dir.join("relay.db"))?),
        StoreLocation::Postgres(url) => Box::new(PostgresStore::connect(url)?),
    })
}
