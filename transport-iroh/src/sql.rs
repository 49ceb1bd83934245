//! Shared SQLite plumbing: opening a database durably, integer conversions and error mapping.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use zerok_core::io::StoreError;

/// Opens (creating it if needed, readable by this user only) a database in WAL mode with
/// `synchronous=FULL`: a commit that returns is on disk.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let fresh = !path.exists();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if fresh {
        restrict_to_owner(path);
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Makes a file readable and writable by its owner only (key material lives in it).
pub fn restrict_to_owner(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// A u64 as SQLite's i64 (cursors and times stay far below 2^63).
pub fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An i64 from SQLite as u64.
pub fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A fixed-size blob column.
pub fn array<const N: usize>(v: Vec<u8>) -> rusqlite::Result<[u8; N]> {
    let len = v.len();
    v.try_into()
        .map_err(|_| rusqlite::Error::InvalidColumnType(0, format!("blob of {len} bytes"), rusqlite::types::Type::Blob))
}

/// What a failed statement means to the core.
pub fn store_error(e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
        _ => StoreError::Io,
    }
}
