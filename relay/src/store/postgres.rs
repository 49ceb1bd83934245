//! The relay's store on PostgreSQL, for relays that outgrow one machine's disk or share one
//! database. The same contract as SQLite ([`super::RelayStore`]) and the same tables; a group's
//! row is locked (`FOR UPDATE`) while an append extends its log, so two writers can never
//! both extend the same head.
//!
//! A connection lost mid-batch (the server restarted, a network cut) is not a crash: the store
//! connects again, with backoff, for up to [`RECONNECT_FOR`], and runs the whole batch again.
//! That is safe whether or not the lost attempt committed: every operation is idempotent, an
//! append finding its push id already stored at its own cursor is the earlier attempt's
//! commit and answers `Done`. Only when the database stays away is the batch reported failed
//! and the relay stops (a restart loads the truth from the database).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement};
use zerok_core::io::StoreError;
use zerok_core::relay::{ChainCheck, ChainRepair, GroupSnapshot, RESTORED_PUSH_IDS, RelayStoreOp, RelayStoreResult};
use zerok_core::wire::{Bytes, StoredBlob};
use zerok_transport_iroh::sql::{int, uint};

use super::{Batch, RelayStore, StoreOpenError};

/// The schema, one migration per version; `zerok_schema` records the version applied.
const MIGRATIONS: &[&str] = &["
CREATE TABLE groups (
    id BYTEA PRIMARY KEY,
    head BIGINT NOT NULL DEFAULT 0,
    head_chain BYTEA,
    pruned_chain BYTEA,
    stored_bytes BIGINT NOT NULL DEFAULT 0,
    stored_blobs BIGINT NOT NULL DEFAULT 0,
    earliest BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE members (
    group_id BYTEA NOT NULL REFERENCES groups(id),
    access_key BYTEA NOT NULL,
    acked BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, access_key)
);
CREATE TABLE blobs (
    group_id BYTEA NOT NULL REFERENCES groups(id),
    cursor BIGINT NOT NULL,
    push_id BYTEA NOT NULL,
    stored_at_ms BIGINT NOT NULL,
    envelope BYTEA NOT NULL,
    chain BYTEA NOT NULL,
    PRIMARY KEY (group_id, cursor)
);
CREATE UNIQUE INDEX blobs_by_push_id ON blobs (group_id, push_id);
-- Ciphertext does not compress: store it out of line as it is.
ALTER TABLE blobs ALTER COLUMN envelope SET STORAGE EXTERNAL;
"];

/// Serialises migrations of relays starting at once (an advisory lock key: "zerok").
const MIGRATION_LOCK: i64 = 0x007a_6572_6f6b;

/// How long a lost database is waited for before the batch fails and the relay stops.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// Session settings: no statement or lock wait may hold the store thread for long.
const SESSION: &str = "SET statement_timeout = '30s'; SET lock_timeout = '10s';
    SET idle_in_transaction_session_timeout = '60s'";

/// The relay's PostgreSQL database.
pub struct PostgresStore {
    url: String,
    client: Client,
    /// Statements prepared on this connection, by their text.
    prepared: HashMap<&'static str, Statement>,
}

/// Why an operation could not run: the database said no, or a stored value is damaged.
enum Fail {
    Db(postgres::Error),
    Damaged,
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Db(e)
    }
}

type Result<T> = std::result::Result<T, Fail>;

impl PostgresStore {
    /// Connects and brings the schema up to date.
    pub fn connect(url: &str) -> std::result::Result<Self, StoreOpenError> {
        let mut client = connect(url)?;
        migrate(&mut client)?;
        Ok(PostgresStore { url: url.to_owned(), client, prepared: HashMap::new() })
    }

    /// Runs the batch in one transaction. Refusals (a duplicate, a fork, an unknown group)
    /// write nothing and raise no error, so operations run one after another; an operation
    /// that fails with an error aborts the attempt, and `careful` runs each operation in a
    /// savepoint of its own (two more round trips each) so the others still commit.
    fn try_batch(
        &mut self,
        ops: &[RelayStoreOp],
        again: bool,
        careful: bool,
    ) -> std::result::Result<Vec<RelayStoreResult>, Fail> {
        let mut tx = self.client.transaction()?;
        let mut results = Vec::with_capacity(ops.len());
        let mut rest = ops;
        while let Some(op) = rest.first() {
            if !careful {
                let mut sql = Sql { client: &mut tx, prepared: &mut self.prepared };
                // A run of appends extending each other, as pushes arrive: one statement.
                let (appends, after) = rest.split_at(append_run(rest));
                if appends.len() > 1 && append_all(&mut sql, appends)? {
                    results.extend(std::iter::repeat_n(RelayStoreResult::Done, appends.len()));
                    rest = after;
                    continue;
                }
                let result = run(&mut sql, op)?;
                results.push(settled(op, result, again));
                rest = rest.get(1..).unwrap_or_default();
                continue;
            }
            rest = rest.get(1..).unwrap_or_default();
            let mut savepoint = tx.savepoint("op")?;
            match run(&mut Sql { client: &mut savepoint, prepared: &mut self.prepared }, op) {
                Ok(RelayStoreResult::Failed(e)) => {
                    savepoint.rollback()?;
                    results.push(RelayStoreResult::Failed(e));
                }
                Ok(result) => {
                    savepoint.commit()?;
                    results.push(settled(op, result, again));
                }
                Err(Fail::Db(e)) if connection_lost(&e) => return Err(Fail::Db(e)),
                Err(e) => {
                    savepoint.rollback()?;
                    results.push(RelayStoreResult::Failed(store_error(&e)));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

impl RelayStore for PostgresStore {
    fn execute(&mut self, ops: &[RelayStoreOp]) -> Batch {
        let give_up = Instant::now() + RECONNECT_FOR;
        let mut wait = Duration::from_millis(50);
        let (mut again, mut careful) = (false, false);
        loop {
            let error = match self.try_batch(ops, again, careful) {
                Ok(results) => return Batch { results, fatal: None },
                Err(Fail::Db(e)) if connection_lost(&e) && Instant::now() < give_up => e,
                // An operation failed with an error (a full disk among them), which aborted the
                // transaction: run them again, each in a savepoint, to fail that one alone.
                Err(_) if !careful => {
                    careful = true;
                    continue;
                }
                // Refused at commit for want of space: nothing was written.
                Err(Fail::Db(e)) if e.code() == Some(&SqlState::DISK_FULL) => {
                    let results = vec![RelayStoreResult::Failed(StoreError::Full); ops.len()];
                    return Batch { results, fatal: None };
                }
                Err(Fail::Db(e)) => return failed(ops, &e.to_string()),
                Err(Fail::Damaged) => return failed(ops, "a stored value is damaged"),
            };
            tracing::warn!(target: "zerok::relay", error = %error, "the database connection was lost: connecting again");
            again = true;
            loop {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
                match connect(&self.url) {
                    Ok(client) => {
                        self.client = client;
                        self.prepared.clear();
                        break;
                    }
                    Err(_) if Instant::now() < give_up => {}
                    Err(e) => return failed(ops, &format!("the database stayed away: {e}")),
                }
            }
        }
    }

    fn repair_chains(&mut self) -> std::result::Result<Vec<([u8; 32], ChainRepair)>, StoreOpenError> {
        let damaged = |_| StoreOpenError("relay database (PostgreSQL): a group id is damaged".to_owned());
        let groups = self.client.query("SELECT id, head_chain, pruned_chain FROM groups", &[])?;
        let mut repairs = Vec::new();
        for g in groups {
            let group_id: [u8; 32] = fixed(g.get(0)).map_err(damaged)?;
            let pruned: Option<Vec<u8>> = g.get(2);
            let mut check = ChainCheck::new(&group_id, pruned.map(fixed).transpose().map_err(damaged)?);
            let mut rows = self.client.query_raw(
                "SELECT cursor, push_id, stored_at_ms, envelope, chain FROM blobs WHERE group_id = $1 ORDER BY cursor",
                [&group_id.as_slice()],
            )?;
            while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
                match stored_blob(&r) {
                    Ok(blob) => check.row(&blob),
                    Err(_) => check.unreadable(uint(r.get(0))),
                }
            }
            let head: Option<Vec<u8>> = g.get(1);
            if let Some(repair) = check.finish(head.map(fixed).transpose().map_err(damaged)?) {
                repairs.push((group_id, repair));
            }
        }
        if repairs.is_empty() {
            return Ok(repairs);
        }
        let mut tx = self.client.transaction()?;
        for (group_id, repair) in &repairs {
            let id = group_id.as_slice();
            for cursor in &repair.dropped {
                tx.execute("DELETE FROM blobs WHERE group_id = $1 AND cursor = $2", &[&id, &int(*cursor)])?;
            }
            for (cursor, chain) in &repair.relinked {
                tx.execute(
                    "UPDATE blobs SET chain = $3 WHERE group_id = $1 AND cursor = $2",
                    &[&id, &int(*cursor), &chain.as_slice()],
                )?;
            }
            tx.execute(
                "UPDATE groups SET head_chain = $2,
                    stored_bytes = (SELECT COALESCE(SUM(octet_length(envelope)), 0) FROM blobs WHERE group_id = $1),
                    stored_blobs = (SELECT COUNT(*) FROM blobs WHERE group_id = $1)
                 WHERE id = $1",
                &[&id, &repair.head_chain.as_slice()],
            )?;
        }
        tx.commit()?;
        Ok(repairs)
    }

    fn snapshots(&mut self) -> std::result::Result<Vec<GroupSnapshot>, StoreOpenError> {
        let damaged = || StoreOpenError("relay database (PostgreSQL): a stored key or chain is damaged".to_owned());
        let groups =
            self.client.query("SELECT id, head, head_chain, stored_bytes, stored_blobs, earliest FROM groups", &[])?;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let group_id: [u8; 32] = fixed(g.get(0)).map_err(|_| damaged())?;
            let id = group_id.as_slice();
            let mut keys = Vec::new();
            let mut acked = Vec::new();
            for m in self.client.query("SELECT access_key, acked FROM members WHERE group_id = $1", &[&id])? {
                let key: [u8; 32] = fixed(m.get(0)).map_err(|_| damaged())?;
                keys.push(key);
                acked.push((key, uint(m.get(1))));
            }
            let mut recent = Vec::new();
            for r in self.client.query(
                "SELECT push_id, cursor FROM blobs WHERE group_id = $1 ORDER BY cursor DESC LIMIT $2",
                &[&id, &(RESTORED_PUSH_IDS as i64)],
            )? {
                recent.push((fixed(r.get(0)).map_err(|_| damaged())?, uint(r.get(1))));
            }
            recent.reverse();
            let chain: Option<Vec<u8>> = g.get(2);
            out.push(GroupSnapshot {
                group_id,
                keys,
                head: uint(g.get(1)),
                chain: chain.map(fixed).transpose().map_err(|_| damaged())?,
                earliest: uint(g.get(5)),
                bytes: uint(g.get(3)),
                blobs: uint(g.get(4)),
                acked,
                recent,
            });
        }
        Ok(out)
    }
}

fn connect(url: &str) -> std::result::Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("zerok-relay");
    }
    let mut client = config.connect(NoTls)?;
    client.batch_execute(SESSION)?;
    Ok(client)
}

fn migrate(client: &mut Client) -> std::result::Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS zerok_schema (version INTEGER NOT NULL)")?;
    let version: i32 = tx.query_opt("SELECT version FROM zerok_schema", &[])?.map_or(0, |r| r.get(0));
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(migration)?;
        tx.execute("DELETE FROM zerok_schema", &[])?;
        tx.execute("INSERT INTO zerok_schema (version) VALUES ($1)", &[&(i as i32 + 1)])?;
    }
    tx.commit()
}

/// On a batch run again after a lost connection, an append already stored at its own cursor
/// is the earlier attempt's commit: done, not a duplicate.
fn settled(op: &RelayStoreOp, result: RelayStoreResult, again: bool) -> RelayStoreResult {
    match (op, result) {
        (RelayStoreOp::Append { blob, .. }, RelayStoreResult::Duplicate { cursor })
            if again && cursor == blob.cursor =>
        {
            RelayStoreResult::Done
        }
        (_, result) => result,
    }
}

fn failed(ops: &[RelayStoreOp], why: &str) -> Batch {
    Batch { results: vec![RelayStoreResult::Failed(StoreError::Io); ops.len()], fatal: Some(why.to_owned()) }
}

/// The connection is gone (or the server is going away): the batch can be run again elsewhere.
fn connection_lost(e: &postgres::Error) -> bool {
    let class = e.code().map(|c| &c.code()[..2]);
    e.is_closed()
        || matches!(class, Some("08") | Some("57"))
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn store_error(e: &Fail) -> StoreError {
    match e {
        Fail::Db(e) if e.code() == Some(&SqlState::DISK_FULL) => StoreError::Full,
        _ => StoreError::Io,
    }
}

fn fixed<const N: usize>(v: Vec<u8>) -> std::result::Result<[u8; N], Vec<u8>> {
    v.try_into()
}

/// A URL for logs: the password, if any, replaced.
pub(super) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ if url.contains("password") => "postgres (key=value settings)".to_owned(),
        _ => url.to_owned(),
    }
}

/// A transaction (or savepoint) whose statements are prepared once per connection: the
/// server parses a statement's text the first time only, a round trip saved on each later use.
struct Sql<'a, C> {
    client: &'a mut C,
    prepared: &'a mut HashMap<&'static str, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Sql<'_, C> {
    fn statement(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }

    fn execute(&mut self, sql: &'static str, params: Params<'_>) -> std::result::Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    fn query(&mut self, sql: &'static str, params: Params<'_>) -> std::result::Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    fn query_one(&mut self, sql: &'static str, params: Params<'_>) -> std::result::Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }
}

fn run(tx: &mut Sql<'_, impl GenericClient>, op: &RelayStoreOp) -> Result<RelayStoreResult> {
    match op {
        RelayStoreOp::CreateGroup { group_id, key } => {
            tx.execute("INSERT INTO groups (id) VALUES ($1) ON CONFLICT DO NOTHING", &[&group_id.as_slice()])?;
            tx.execute(
                "INSERT INTO members (group_id, access_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&group_id.as_slice(), &key.as_slice()],
            )?;
            Ok(RelayStoreResult::Done)
        }
        RelayStoreOp::RegisterKey { group_id, key } => {
            if tx.query_opt("SELECT 1 FROM groups WHERE id = $1", &[&group_id.as_slice()])?.is_none() {
                return Ok(RelayStoreResult::Failed(StoreError::Io));
            }
            tx.execute(
                "INSERT INTO members (group_id, access_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&group_id.as_slice(), &key.as_slice()],
            )?;
            Ok(RelayStoreResult::Done)
        }
        RelayStoreOp::Append { group_id, blob, prev_cursor } => append(tx, group_id, blob, *prev_cursor),
        RelayStoreOp::Read { group_id, after, up_to, limit, max_bytes } => {
            read(tx, group_id, *after, *up_to, *limit, *max_bytes)
        }
        RelayStoreOp::SaveAck { group_id, key, cursor } => {
            tx.execute(
                "UPDATE members SET acked = GREATEST(acked, $3) WHERE group_id = $1 AND access_key = $2",
                &[&group_id.as_slice(), &key.as_slice(), &int(*cursor)],
            )?;
            Ok(RelayStoreResult::Done)
        }
        RelayStoreOp::Prune { group_id, before, stored_before_ms } => prune(tx, group_id, *before, *stored_before_ms),
    }
}

/// One statement, one round trip: lock the group's row, look for the push id, insert and move
/// the head only if the blob extends it; the answer says which happened.
const APPEND: &str = "
WITH g AS (SELECT head FROM groups WHERE id = $1 FOR UPDATE),
     dup AS (SELECT cursor FROM blobs WHERE group_id = $1 AND push_id = $3),
     ins AS (
        INSERT INTO blobs (group_id, cursor, push_id, stored_at_ms, envelope, chain)
        SELECT $1, $2, $3, $4, $5, $6 FROM g WHERE g.head = $7 AND NOT EXISTS (SELECT 1 FROM dup)
        RETURNING 1),
     upd AS (
        UPDATE groups SET head = $2, head_chain = $6, stored_bytes = stored_bytes + $8, stored_blobs = stored_blobs + 1
        WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)
        RETURNING 1)
SELECT (SELECT cursor FROM dup), EXISTS (SELECT 1 FROM upd)";

fn append(
    tx: &mut Sql<'_, impl GenericClient>,
    group_id: &[u8; 32],
    blob: &StoredBlob,
    prev_cursor: u64,
) -> Result<RelayStoreResult> {
    let row = tx.query_one(
        APPEND,
        &[
            &group_id.as_slice(),
            &int(blob.cursor),
            &blob.push_id.as_slice(),
            &int(blob.stored_at_ms),
            &blob.envelope.0,
            &blob.chain.as_slice(),
            &int(prev_cursor),
            &int(blob.envelope.len() as u64),
        ],
    )?;
    let (stored, appended): (Option<i64>, bool) = (row.get(0), row.get(1));
    Ok(match stored {
        Some(cursor) => RelayStoreResult::Duplicate { cursor: uint(cursor) },
        None if appended => RelayStoreResult::Done,
        // An unknown group, or a blob that does not extend the stored log: nothing written.
        None => RelayStoreResult::Failed(StoreError::Io),
    })
}

/// How many operations from the first are appends to one group, each extending the one before.
fn append_run(ops: &[RelayStoreOp]) -> usize {
    let mut run = 0;
    let mut tip: Option<([u8; 32], u64)> = None;
    for op in ops {
        let RelayStoreOp::Append { group_id, blob, prev_cursor } = op else { break };
        if tip.is_some_and(|(g, cursor)| g != *group_id || cursor != *prev_cursor) {
            break;
        }
        tip = Some((*group_id, blob.cursor));
        run += 1;
    }
    run
}

/// Appends a run (see [`append_run`]) in one statement, if none of its push ids is stored and
/// the first extends the head; false, with nothing written, otherwise (each is then appended
/// alone, to answer each).
const APPEND_ALL: &str = "
WITH g AS (SELECT head FROM groups WHERE id = $1 FOR UPDATE),
     dup AS (SELECT 1 FROM blobs WHERE group_id = $1 AND push_id = ANY($3)),
     ins AS (
        INSERT INTO blobs (group_id, cursor, push_id, stored_at_ms, envelope, chain)
        SELECT $1, u.c, u.p, u.t, u.e, u.ch
        FROM unnest($2::BIGINT[], $3::BYTEA[], $4::BIGINT[], $5::BYTEA[], $6::BYTEA[]) AS u(c, p, t, e, ch), g
        WHERE g.head = $7 AND NOT EXISTS (SELECT 1 FROM dup)
        RETURNING 1),
     upd AS (
        UPDATE groups SET head = $8, head_chain = $9, stored_bytes = stored_bytes + $10,
            stored_blobs = stored_blobs + $11
        WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)
        RETURNING 1)
SELECT EXISTS (SELECT 1 FROM upd)";

fn append_all(tx: &mut Sql<'_, impl GenericClient>, run: &[RelayStoreOp]) -> Result<bool> {
    let blobs: Vec<&StoredBlob> = run
        .iter()
        .filter_map(|op| if let RelayStoreOp::Append { blob, .. } = op { Some(blob) } else { None })
        .collect();
    let (Some(RelayStoreOp::Append { group_id, prev_cursor, .. }), Some(last)) = (run.first(), blobs.last()) else {
        return Ok(false);
    };
    let cursors: Vec<i64> = blobs.iter().map(|b| int(b.cursor)).collect();
    let push_ids: Vec<&[u8]> = blobs.iter().map(|b| b.push_id.as_slice()).collect();
    let times: Vec<i64> = blobs.iter().map(|b| int(b.stored_at_ms)).collect();
    let envelopes: Vec<&[u8]> = blobs.iter().map(|b| b.envelope.0.as_slice()).collect();
    let chains: Vec<&[u8]> = blobs.iter().map(|b| b.chain.as_slice()).collect();
    let bytes: u64 = blobs.iter().map(|b| b.envelope.len() as u64).sum();
    let row = tx.query_one(
        APPEND_ALL,
        &[
            &group_id.as_slice(),
            &cursors,
            &push_ids,
            &times,
            &envelopes,
            &chains,
            &int(*prev_cursor),
            &int(last.cursor),
            &last.chain.as_slice(),
            &int(bytes),
            &(blobs.len() as i64),
        ],
    )?;
    Ok(row.get(0))
}

fn read(
    tx: &mut Sql<'_, impl GenericClient>,
    group_id: &[u8; 32],
    after: u64,
    up_to: u64,
    limit: u32,
    max_bytes: usize,
) -> Result<RelayStoreResult> {
    let id = group_id.as_slice();
    let below = tx.query_opt(
        "SELECT chain FROM blobs WHERE group_id = $1 AND cursor <= $2 ORDER BY cursor DESC LIMIT 1",
        &[&id, &int(after)],
    )?;
    let prev_chain: Option<Vec<u8>> = match below {
        Some(r) => Some(r.get(0)),
        None => tx.query_opt("SELECT pruned_chain FROM groups WHERE id = $1", &[&id])?.and_then(|r| r.get(0)),
    };
    let rows = tx.query(
        "SELECT cursor, push_id, stored_at_ms, envelope, chain FROM blobs
         WHERE group_id = $1 AND cursor > $2 AND cursor <= $3 ORDER BY cursor LIMIT $4",
        &[&id, &int(after), &int(up_to), &(i64::from(limit) + 1)],
    )?;
    let (mut blobs, mut bytes, mut more) = (Vec::new(), 0usize, false);
    for row in rows {
        let b = stored_blob(&row)?;
        if blobs.len() >= limit as usize || (!blobs.is_empty() && bytes + b.envelope.len() > max_bytes) {
            more = true;
            break;
        }
        bytes += b.envelope.len();
        blobs.push(b);
    }
    let prev_chain = prev_chain.map(fixed).transpose().map_err(|_| Fail::Damaged)?;
    Ok(RelayStoreResult::Blobs { prev_chain, blobs, more })
}

/// A blob row selected as `cursor, push_id, stored_at_ms, envelope, chain`.
fn stored_blob(r: &postgres::Row) -> Result<StoredBlob> {
    Ok(StoredBlob {
        cursor: uint(r.try_get(0)?),
        push_id: fixed(r.try_get(1)?).map_err(|_| Fail::Damaged)?,
        stored_at_ms: uint(r.try_get(2)?),
        envelope: Bytes(r.try_get(3)?),
        chain: fixed(r.try_get(4)?).map_err(|_| Fail::Damaged)?,
    })
}

fn prune(
    tx: &mut Sql<'_, impl GenericClient>,
    group_id: &[u8; 32],
    before: u64,
    stored_before_ms: u64,
) -> Result<RelayStoreResult> {
    let id = group_id.as_slice();
    let Some(head) = tx.query_opt("SELECT head FROM groups WHERE id = $1 FOR UPDATE", &[&id])? else {
        return Ok(RelayStoreResult::Failed(StoreError::Io));
    };
    let head: i64 = head.get(0);
    // The log keeps a suffix: everything from the first blob that is neither old enough nor
    // below `before`.
    let keep_from: Option<i64> = tx
        .query_one(
            "SELECT MIN(cursor) FROM blobs WHERE group_id = $1 AND cursor >= $2 AND stored_at_ms >= $3",
            &[&id, &int(before), &int(stored_before_ms)],
        )?
        .get(0);
    let keep_from = keep_from.unwrap_or(head.saturating_add(1));
    let last_pruned = tx.query_opt(
        "SELECT chain FROM blobs WHERE group_id = $1 AND cursor < $2 ORDER BY cursor DESC LIMIT 1",
        &[&id, &keep_from],
    )?;
    if let Some(last) = last_pruned {
        let chain: Vec<u8> = last.get(0);
        let counted = tx.query_one(
            "SELECT COALESCE(SUM(octet_length(envelope)), 0)::BIGINT, COUNT(*) FROM blobs WHERE group_id = $1 AND cursor < $2",
            &[&id, &keep_from],
        )?;
        let (bytes, blobs): (i64, i64) = (counted.get(0), counted.get(1));
        tx.execute("DELETE FROM blobs WHERE group_id = $1 AND cursor < $2", &[&id, &keep_from])?;
        tx.execute(
            "UPDATE groups SET pruned_chain = $2, stored_bytes = stored_bytes - $3, stored_blobs = stored_blobs - $4,
                earliest = GREATEST(earliest, $5)
             WHERE id = $1",
            &[&id, &chain, &bytes, &blobs, &keep_from],
        )?;
    }
    let left = tx.query_one("SELECT earliest, stored_bytes, stored_blobs FROM groups WHERE id = $1", &[&id])?;
    Ok(RelayStoreResult::Pruned { earliest: uint(left.get(0)), bytes: uint(left.get(1)), blobs: uint(left.get(2)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_found_stored_at_its_own_cursor_on_a_second_run_is_done() {
        let blob = StoredBlob { cursor: 5, push_id: [1; 16], stored_at_ms: 0, envelope: Bytes(vec![]), chain: [0; 32] };
        let op = RelayStoreOp::Append { group_id: [0; 32], blob, prev_cursor: 4 };
        let at = |cursor| RelayStoreResult::Duplicate { cursor };
        assert_eq!(settled(&op, at(5), true), RelayStoreResult::Done, "the lost attempt had committed");
        assert_eq!(settled(&op, at(5), false), at(5), "a first run's duplicate is a device's resend");
        assert_eq!(settled(&op, at(3), true), at(3), "stored earlier at another cursor: a resend");
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redacted("postgres://relay:s3cret@db:5432/zerok"), "postgres://relay@db:5432/zerok");
        assert_eq!(redacted("postgres://relay@db/zerok"), "postgres://relay@db/zerok");
        assert!(!redacted("host=db password=s3cret").contains("s3cret"));
    }
}
