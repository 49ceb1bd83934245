//! The relay's durable store on SQLite: groups, registered access keys, blobs with their log
//! chain values, and acknowledged cursors. Executes core's [`RelayStoreOp`]s, many per
//! transaction (group commit); a result is reported only after its transaction committed.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

type Db = Connection;
use zerok_core::io::StoreError;
use zerok_core::relay::{
    ChainCheck, ChainRepair, GroupSnapshot, RESTORED_PUSH_IDS, RelayStoreOp, RelayStoreResult, next_blob,
};
use zerok_core::wire::{Bytes, StoredBlob};

use super::{Batch, RelayStore, StoreOpenError};
use zerok_transport_iroh::sql::{add_column_once, array, commit_batch, exec, int, query_row, store_error, uint};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS groups (
    id BLOB PRIMARY KEY,
    head INTEGER NOT NULL DEFAULT 0,
    head_chain BLOB,
    pruned_chain BLOB,
    stored_bytes INTEGER,
    stored_blobs INTEGER,
    earliest INTEGER
);
CREATE TABLE IF NOT EXISTS members (
    group_id BLOB NOT NULL REFERENCES groups(id),
    access_key BLOB NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, access_key)
);
CREATE TABLE IF NOT EXISTS blobs (
    group_id BLOB NOT NULL REFERENCES groups(id),
    cursor INTEGER NOT NULL,
    push_id BLOB NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    chain BLOB NOT NULL,
    PRIMARY KEY (group_id, cursor)
);
CREATE UNIQUE INDEX IF NOT EXISTS blobs_by_push_id ON blobs (group_id, push_id);
";

/// The relay's SQLite database.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = zerok_transport_iroh::sql::open(path)?;
        conn.execute_batch(SCHEMA)?;
        count_stored_once(&conn)?;
        record_earliest_once(&conn)?;
        Ok(SqliteStore { conn })
    }
}

impl RelayStore for SqliteStore {
    fn execute(&mut self, ops: &[RelayStoreOp]) -> Batch {
        let (results, fatal) = commit_batch(&mut self.conn, ops, |db, op| match run(db, op) {
            Ok(RelayStoreResult::Failed(e)) => Err(e),
            Ok(result) => Ok(result),
            Err(e) => Err(store_error(&e)),
        });
        Batch { results: results.into_iter().map(|r| r.unwrap_or_else(RelayStoreResult::Failed)).collect(), fatal }
    }

    fn repair_chains(&mut self) -> Result<Vec<([u8; 32], ChainRepair)>, StoreOpenError> {
        type GroupRow = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
        let groups: Vec<GroupRow> = self
            .conn
            .prepare("SELECT id, head_chain, pruned_chain FROM groups")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut repairs = Vec::new();
        for (id, head_chain, pruned_chain) in groups {
            let group_id: [u8; 32] = array(id)?;
            let mut check = ChainCheck::new(&group_id, pruned_chain.map(array).transpose()?);
            let mut rows = self.conn.prepare(
                "SELECT cursor, push_id, stored_at_ms, envelope, chain FROM blobs WHERE group_id = ?1 ORDER BY cursor",
            )?;
            let mut rows = rows.query(params![group_id])?;
            while let Some(r) = rows.next()? {
                match stored_blob(r) {
                    Ok(blob) => check.row(&blob),
                    // A column of the wrong size: damaged past reading.
                    Err(_) => check.unreadable(uint(r.get(0)?)),
                }
            }
            if let Some(repair) = check.finish(head_chain.map(array).transpose()?) {
                repairs.push((group_id, repair));
            }
        }
        if repairs.is_empty() {
            return Ok(repairs);
        }
        let tx = self.conn.transaction()?;
        for (group_id, repair) in &repairs {
            for cursor in &repair.dropped {
                exec(&tx, "DELETE FROM blobs WHERE group_id = ?1 AND cursor = ?2", params![group_id, int(*cursor)])?;
            }
            for (cursor, chain) in &repair.relinked {
                exec(
                    &tx,
                    "UPDATE blobs SET chain = ?3 WHERE group_id = ?1 AND cursor = ?2",
                    params![group_id, int(*cursor), chain],
                )?;
            }
            exec(
                &tx,
                "UPDATE groups SET head_chain = ?2,
                    stored_bytes = (SELECT COALESCE(SUM(length(envelope)), 0) FROM blobs WHERE group_id = ?1),
                    stored_blobs = (SELECT COUNT(*) FROM blobs WHERE group_id = ?1)
                 WHERE id = ?1",
                params![group_id, repair.head_chain],
            )?;
        }
        tx.commit()?;
        Ok(repairs)
    }

    fn snapshots(&mut self) -> Result<Vec<GroupSnapshot>, StoreOpenError> {
        let ids: Vec<Vec<u8>> = self
            .conn
            .prepare("SELECT id FROM groups")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for id in ids {
            out.extend(load_group(&self.conn, &array(id)?, RESTORED_PUSH_IDS)?);
        }
        Ok(out)
    }
}

/// A group as the relay loads it, with its `recent` newest push ids.
fn load_group(db: &Db, group_id: &[u8; 32], recent: usize) -> rusqlite::Result<Option<GroupSnapshot>> {
    let row = query_row(
        db,
        "SELECT head, head_chain, stored_bytes, stored_blobs, earliest FROM groups WHERE id = ?1",
        params![group_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<Vec<u8>>>(1)?,
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                r.get::<_, i64>(4)?,
            ))
        },
    )
    .optional()?;
    let Some((head, chain, bytes, blobs, earliest)) = row else { return Ok(None) };
    let mut members = db.prepare_cached("SELECT access_key, acked FROM members WHERE group_id = ?1")?;
    let mut keys = Vec::new();
    let mut acked = Vec::new();
    for m in members.query_map(params![group_id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))? {
        let (key, ack) = m?;
        let key: [u8; 32] = array(key)?;
        keys.push(key);
        acked.push((key, uint(ack)));
    }
    let mut recent_ids =
        db.prepare_cached("SELECT push_id, cursor FROM blobs WHERE group_id = ?1 ORDER BY cursor DESC LIMIT ?2")?;
    let mut recent_rows = Vec::new();
    for row in recent_ids
        .query_map(params![group_id, recent as i64], |r| Ok((array(r.get::<_, Vec<u8>>(0)?)?, uint(r.get(1)?))))?
    {
        recent_rows.push(row?);
    }
    recent_rows.reverse();
    Ok(Some(GroupSnapshot {
        group_id: *group_id,
        keys,
        head: uint(head),
        chain: chain.map(array).transpose()?,
        earliest: uint(earliest).max(1),
        bytes: uint(bytes),
        blobs: uint(blobs),
        acked,
        recent: recent_rows,
    }))
}

fn run(tx: &Db, op: &RelayStoreOp) -> rusqlite::Result<RelayStoreResult> {
    match op {
        RelayStoreOp::CreateGroup { group_id, key } => create_group(tx, group_id, key),
        RelayStoreOp::RegisterKey { group_id, key } => register_key(tx, group_id, key),
        RelayStoreOp::Append { group_id, push_id, stored_at_ms, envelope, after } => {
            append(tx, group_id, *push_id, *stored_at_ms, envelope, *after)
        }
        RelayStoreOp::LoadGroup { group_id } => Ok(RelayStoreResult::Group(load_group(tx, group_id, 0)?)),
        RelayStoreOp::Read { group_id, after, up_to, limit, max_bytes } => {
            read(tx, group_id, *after, *up_to, *limit, *max_bytes)
        }
        RelayStoreOp::SaveAck { group_id, key, cursor } => exec(
            tx,
            "UPDATE members SET acked = MAX(acked, ?3) WHERE group_id = ?1 AND access_key = ?2",
            params![group_id, key, int(*cursor)],
        )
        .map(|_| RelayStoreResult::Done),
        RelayStoreOp::Prune { group_id, all_acked, stored_before_ms } => {
            prune(tx, group_id, *all_acked, *stored_before_ms)
        }
    }
}

/// Counts each group's stored bytes and blobs if an older version left them uncounted; from
/// then on appends and prunes keep them, so a start never scans the blobs.
fn count_stored_once(conn: &Connection) -> rusqlite::Result<()> {
    add_column_once(conn, "groups", "stored_bytes", "INTEGER")?;
    add_column_once(conn, "groups", "stored_blobs", "INTEGER")?;
    conn.execute_batch(
        "UPDATE groups SET
            stored_bytes = (SELECT COALESCE(SUM(length(envelope)), 0) FROM blobs WHERE group_id = groups.id),
            stored_blobs = (SELECT COUNT(*) FROM blobs WHERE group_id = groups.id)
         WHERE stored_bytes IS NULL OR stored_blobs IS NULL",
    )
}

/// Records each group's oldest retained cursor if an older version left it to be derived from
/// the rows: from then on only pruning moves it, so rows a repair drops (damaged at rest, to be
/// pushed again) never look pruned.
fn record_earliest_once(conn: &Connection) -> rusqlite::Result<()> {
    add_column_once(conn, "groups", "earliest", "INTEGER")?;
    conn.execute_batch(
        "UPDATE groups SET earliest = COALESCE((SELECT MIN(cursor) FROM blobs WHERE group_id = groups.id), head + 1)
         WHERE earliest IS NULL",
    )
}

/// The oldest cursor pruning kept.
fn earliest_cursor(tx: &Db, group_id: &[u8; 32]) -> rusqlite::Result<u64> {
    query_row(tx, "SELECT earliest FROM groups WHERE id = ?1", params![group_id], |r| r.get::<_, i64>(0)).map(uint)
}

fn create_group(tx: &Db, group_id: &[u8; 32], key: &[u8; 32]) -> rusqlite::Result<RelayStoreResult> {
    if group_exists(tx, group_id)? {
        let member = query_row(
            tx,
            "SELECT 1 FROM members WHERE group_id = ?1 AND access_key = ?2",
            params![group_id, key],
            |_| Ok(()),
        )
        .optional()?;
        // A creation retried, or another device's group.
        return Ok(if member.is_some() { RelayStoreResult::Done } else { RelayStoreResult::Failed(StoreError::Io) });
    }
    exec(tx, "INSERT INTO groups (id, stored_bytes, stored_blobs, earliest) VALUES (?1, 0, 0, 1)", params![group_id])?;
    exec(tx, "INSERT INTO members (group_id, access_key) VALUES (?1, ?2)", params![group_id, key])?;
    Ok(RelayStoreResult::Done)
}

fn register_key(tx: &Db, group_id: &[u8; 32], key: &[u8; 32]) -> rusqlite::Result<RelayStoreResult> {
    if !group_exists(tx, group_id)? {
        return Ok(RelayStoreResult::Failed(StoreError::Io));
    }
    exec(tx, "INSERT OR IGNORE INTO members (group_id, access_key) VALUES (?1, ?2)", params![group_id, key])?;
    Ok(RelayStoreResult::Done)
}

fn group_exists(tx: &Db, group_id: &[u8; 32]) -> rusqlite::Result<bool> {
    Ok(query_row(tx, "SELECT 1 FROM groups WHERE id = ?1", params![group_id], |_| Ok(())).optional()?.is_some())
}

fn append(
    tx: &Db,
    group_id: &[u8; 32],
    push_id: [u8; 16],
    stored_at_ms: u64,
    envelope: &Bytes,
    after: Option<[u8; 16]>,
) -> rusqlite::Result<RelayStoreResult> {
    let stored_at = |id: [u8; 16]| {
        query_row(tx, "SELECT cursor FROM blobs WHERE group_id = ?1 AND push_id = ?2", params![group_id, id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
    };
    if let Some(cursor) = stored_at(push_id)? {
        return Ok(RelayStoreResult::Duplicate { cursor: uint(cursor) });
    }
    if let Some(after) = after
        && stored_at(after)?.is_none()
    {
        // The push before it failed: storing this one would put it ahead.
        return Ok(RelayStoreResult::Failed(StoreError::Io));
    }
    let head = query_row(tx, "SELECT head, head_chain FROM groups WHERE id = ?1", params![group_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
    })
    .optional()?;
    let Some((head, head_chain)) = head else { return Ok(RelayStoreResult::Failed(StoreError::Io)) };
    let blob =
        next_blob(group_id, uint(head), head_chain.map(array).transpose()?, push_id, stored_at_ms, envelope.clone());
    exec(
        tx,
        "INSERT INTO blobs (group_id, cursor, push_id, stored_at_ms, envelope, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![group_id, int(blob.cursor), push_id, int(stored_at_ms), envelope.0, blob.chain],
    )?;
    exec(
        tx,
        "UPDATE groups SET head = ?2, head_chain = ?3, stored_bytes = stored_bytes + ?4, stored_blobs = stored_blobs + 1
         WHERE id = ?1",
        params![group_id, int(blob.cursor), blob.chain, int(envelope.len() as u64)],
    )?;
    Ok(RelayStoreResult::Stored { cursor: blob.cursor, chain: blob.chain })
}

fn read(
    tx: &Db,
    group_id: &[u8; 32],
    after: u64,
    up_to: u64,
    limit: u32,
    max_bytes: usize,
) -> rusqlite::Result<RelayStoreResult> {
    let below: Option<Vec<u8>> = query_row(
        tx,
        "SELECT chain FROM blobs WHERE group_id = ?1 AND cursor <= ?2 ORDER BY cursor DESC LIMIT 1",
        params![group_id, int(after)],
        |r| r.get(0),
    )
    .optional()?;
    let prev_chain = match below {
        Some(c) => Some(c),
        None => query_row(tx, "SELECT pruned_chain FROM groups WHERE id = ?1", params![group_id], |r| r.get(0))
            .optional()?
            .flatten(),
    };
    let mut stmt = tx.prepare_cached(
        "SELECT cursor, push_id, stored_at_ms, envelope, chain FROM blobs
         WHERE group_id = ?1 AND cursor > ?2 AND cursor <= ?3 ORDER BY cursor LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![group_id, int(after), int(up_to), i64::from(limit) + 1], stored_blob)?;
    let (mut blobs, mut bytes, mut more) = (Vec::new(), 0usize, false);
    for row in rows {
        let b = row?;
        if blobs.len() >= limit as usize || (!blobs.is_empty() && bytes + b.envelope.len() > max_bytes) {
            more = true;
            break;
        }
        bytes += b.envelope.len();
        blobs.push(b);
    }
    Ok(RelayStoreResult::Blobs { prev_chain: prev_chain.map(array).transpose()?, blobs, more })
}

/// A blob row selected as `cursor, push_id, stored_at_ms, envelope, chain`.
fn stored_blob(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredBlob> {
    Ok(StoredBlob {
        cursor: uint(r.get(0)?),
        push_id: array(r.get(1)?)?,
        stored_at_ms: uint(r.get(2)?),
        envelope: Bytes(r.get(3)?),
        chain: array(r.get(4)?)?,
    })
}

fn prune(tx: &Db, group_id: &[u8; 32], all_acked: bool, stored_before_ms: u64) -> rusqlite::Result<RelayStoreResult> {
    let Some(head) =
        query_row(tx, "SELECT head FROM groups WHERE id = ?1", params![group_id], |r| r.get::<_, i64>(0)).optional()?
    else {
        return Ok(RelayStoreResult::Failed(StoreError::Io));
    };
    let min_acked: i64 =
        query_row(tx, "SELECT COALESCE(MIN(acked), 0) FROM members WHERE group_id = ?1", params![group_id], |r| {
            r.get(0)
        })?;
    let before = if all_acked { min_acked.min(head) + 1 } else { 0 };
    // The log keeps a suffix: everything from the first blob that is neither old enough nor
    // below `before`.
    let keep_from: Option<i64> = query_row(
        tx,
        "SELECT MIN(cursor) FROM blobs WHERE group_id = ?1 AND cursor >= ?2 AND stored_at_ms >= ?3",
        params![group_id, before, int(stored_before_ms)],
        |r| r.get(0),
    )?;
    let keep_from = keep_from.unwrap_or(head.saturating_add(1));
    let last_pruned: Option<Vec<u8>> = query_row(
        tx,
        "SELECT chain FROM blobs WHERE group_id = ?1 AND cursor < ?2 ORDER BY cursor DESC LIMIT 1",
        params![group_id, keep_from],
        |r| r.get(0),
    )
    .optional()?;
    if let Some(chain) = last_pruned {
        let (bytes, blobs) = query_row(
            tx,
            "SELECT COALESCE(SUM(length(envelope)), 0), COUNT(*) FROM blobs WHERE group_id = ?1 AND cursor < ?2",
            params![group_id, keep_from],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        exec(tx, "DELETE FROM blobs WHERE group_id = ?1 AND cursor < ?2", params![group_id, keep_from])?;
        exec(
            tx,
            "UPDATE groups SET pruned_chain = ?2, stored_bytes = stored_bytes - ?3, stored_blobs = stored_blobs - ?4,
                earliest = MAX(earliest, ?5)
             WHERE id = ?1",
            params![group_id, chain, bytes, blobs, keep_from],
        )?;
    }
    let earliest = earliest_cursor(tx, group_id)?;
    let (bytes, blobs) =
        query_row(tx, "SELECT stored_bytes, stored_blobs FROM groups WHERE id = ?1", params![group_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
    Ok(RelayStoreResult::Pruned { earliest, bytes: uint(bytes), blobs: uint(blobs) })
}

/// Migrations of older SQLite databases; what every store does is in `contract.rs`.
#[cfg(test)]
mod tests {
    use super::super::contract::{append, counts, linked};
    use super::*;

    #[test]
    fn a_database_from_before_the_counts_is_counted_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let mut db = SqliteStore::open(&path).unwrap();
        let ops =
            [RelayStoreOp::CreateGroup { group_id: super::super::contract::GROUP, key: [2; 32] }, append(1, 250, None)];
        assert!(db.execute(&ops).fatal.is_none());
        // What an older relay left: no count columns.
        db.conn
            .execute_batch("ALTER TABLE groups DROP COLUMN stored_bytes; ALTER TABLE groups DROP COLUMN stored_blobs;")
            .unwrap();
        drop(db);
        let mut db = SqliteStore::open(&path).unwrap();
        assert_eq!(counts(&mut db), (1, 250, 1));
        assert!(db.execute(&[append(2, 50, Some(1))]).fatal.is_none());
        assert_eq!(counts(&mut db), (1, 300, 2));
    }

    #[test]
    fn a_database_from_before_the_earliest_column_derives_it_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let mut db = SqliteStore::open(&path).unwrap();
        linked(&mut db, 3);
        db.conn.execute_batch("DELETE FROM blobs WHERE cursor = 1; ALTER TABLE groups DROP COLUMN earliest;").unwrap();
        drop(db);
        let mut db = SqliteStore::open(&path).unwrap();
        assert_eq!(counts(&mut db).0, 2, "what an older relay pruned is where its oldest row is");
    }
}
