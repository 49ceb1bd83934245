//! Shared SQLite plumbing of the device store and the relay's (`zerok-relay`): opening a database
//! durably, group commit, integer conversions and error mapping.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use zerok_core::io::StoreError;

/// Opens (creating it if needed, readable by this user only) a database in WAL mode with
/// `synchronous=FULL`: a commit that returns is on disk.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let fresh = !path.exists();
    if fresh {
        // Owner-only from its first byte (SQLite gives its journal files the same mode).
        create_owner_only(path).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if fresh {
        // Blobs up to 1 MiB are the common large case: 16 KiB pages write them about twice as
        // fast as the default 4 KiB (fewer overflow pages and WAL frames), and a small commit
        // still writes only a few pages. Only a new database takes this.
        conn.pragma_update(None, "page_size", 16384)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint journals (one per store operation) stay in memory, not in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Adds `column` (with its SQL `definition`) to `table` unless an earlier open did: a schema
/// migration for a database an older version created.
pub fn add_column_once(conn: &Connection, table: &str, column: &str, definition: &str) -> rusqlite::Result<()> {
    let present = conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?.exists([table, column])?;
    if !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
    }
    Ok(())
}

/// Creates an empty file readable and writable by its owner only (key material lives in it),
/// never readable by others even for a moment; truncates it if it exists.
pub fn create_owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
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

/// Runs `ops` in one transaction (group commit), each inside its own savepoint so that a failed
/// operation leaves no trace while the others stand. Returns each operation's result, and the
/// reason if the transaction itself could not begin or commit (then every operation failed and
/// the disk can no longer be trusted). A commit refused for want of space is not such a
/// reason: the transaction is rolled back whole, every operation fails with
/// [`StoreError::Full`], and the store is as it was.
pub fn commit_batch<O, R>(
    conn: &mut Connection,
    ops: &[O],
    run: impl Fn(&Connection, &O) -> Result<R, StoreError>,
) -> (Vec<Result<R, StoreError>>, Option<String>) {
    let all_failed = |e: &rusqlite::Error| (0..ops.len()).map(|_| Err(store_error(e))).collect();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return (all_failed(&e), Some(format!("cannot begin a transaction: {e}"))),
    };
    let results = ops.iter().map(|op| in_savepoint(&tx, || run(&tx, op))).collect();
    match tx.commit() {
        Ok(()) => (results, None),
        Err(e) if store_error(&e) == StoreError::Full => (all_failed(&e), None),
        Err(e) => (all_failed(&e), Some(format!("commit failed: {e}"))),
    }
}

/// Runs `f` inside a savepoint, undone if `f` fails. The savepoint statements are compiled
/// once (rusqlite's `Savepoint` parses them on every use, a tenth of a small push's cost).
fn in_savepoint<R>(db: &Connection, f: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
    exec(db, "SAVEPOINT op", []).map_err(|e| store_error(&e))?;
    match f() {
        Ok(result) => {
            exec(db, "RELEASE op", []).map_err(|e| store_error(&e))?;
            Ok(result)
        }
        Err(e) => {
            let _ = exec(db, "ROLLBACK TO op", []);
            let _ = exec(db, "RELEASE op", []);
            Err(e)
        }
    }
}

/// Waits for one item, then takes whatever else is already waiting, up to `max` in all.
pub fn recv_batch<T>(rx: &std::sync::mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().ok()?];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Executes a statement, compiled once per connection.
pub fn exec(db: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    db.prepare_cached(sql)?.execute(params)
}

/// Runs a query for its first row, compiled once per connection.
pub fn query_row<T>(
    db: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    db.prepare_cached(sql)?.query_row(params, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14: key files were created with the default mode and restricted afterwards.
    #[cfg(unix)]
    #[test]
    fn key_material_files_are_owner_only_from_their_creation() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let file = dir.path().join("relay.key.tmp");
        drop(create_owner_only(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        let db = dir.path().join("device.db");
        drop(open(&db).unwrap());
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn a_failed_operation_leaves_no_trace_and_the_others_stand() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let (results, fatal) = commit_batch(&mut conn, &[1, 2, 3], |db, &v| {
            exec(db, "INSERT INTO t (v) VALUES (?1)", [v]).map_err(|e| store_error(&e))?;
            if v == 2 { Err(StoreError::Full) } else { Ok(v * 10) }
        });
        assert_eq!(results, vec![Ok(10), Err(StoreError::Full), Ok(30)]);
        assert!(fatal.is_none());
        let kept: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kept, vec![1, 3], "the failed operation's insert was rolled back");
    }
}
