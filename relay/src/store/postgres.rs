//! The relay's store on PostgreSQL, for relays that outgrow one machine's disk or share one
//! database. The same contract as SQLite ([`super::RelayStore`]) and the same tables. The
//! store assigns cursors: a batch locks the rows of the groups it appends to (`FOR UPDATE`, in
//! id order, so relays never deadlock), reads each head, and writes each group's appends at
//! the next cursors in one statement, so several relays over one database never hand out a
//! cursor twice or fork a log.
//!
//! A connection lost mid-batch (the server restarted, a network cut) is not a crash: the store
//! connects again, with backoff, for up to [`RECONNECT_FOR`], and runs the whole batch again.
//! That is safe whether or not the lost attempt committed: every operation is idempotent, an
//! append finding its push id already stored answers `Duplicate` with its cursor. Only when
//! the database stays away is the batch reported failed and the relay stops (a restart loads
//! the truth from the database).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement};
use zerok_core::io::StoreError;
use zerok_core::relay::{
    ChainCheck, ChainRepair, GroupSnapshot, RESTORED_PUSH_IDS, RelayStoreOp, RelayStoreResult, next_blob,
};
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
    /// Lock the rows of the groups a batch appends to: false only in the concurrency test's
    /// planted bug, which it must catch.
    pub(super) lock_rows: bool,
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
        Ok(PostgresStore { url: url.to_owned(), client, prepared: HashMap::new(), lock_rows: true })
    }

    /// Runs the batch in one transaction. Refusals (a duplicate, a fork, an unknown group)
    /// write nothing and raise no error, so operations run one after another; an operation
    /// that fails with an error aborts the attempt, and `careful` runs each operation in a
    /// savepoint of its own (two more round trips each) so the others still commit.
    fn try_batch(&mut self, ops: &[RelayStoreOp], careful: bool) -> std::result::Result<Vec<RelayStoreResult>, Fail> {
        let lock = self.lock_rows;
        let mut tx = self.client.transaction()?;
        let mut results = Vec::with_capacity(ops.len());
        if lock {
            lock_groups(&mut Sql { client: &mut tx, prepared: &mut self.prepared, lock }, ops)?;
        }
        let mut rest = ops;
        while let Some(op) = rest.first() {
            if !careful {
                let mut sql = Sql { client: &mut tx, prepared: &mut self.prepared, lock };
                // A run of appends to one group, as pushes arrive: written by one statement.
                let (appends, after) = rest.split_at(append_run(rest));
                if !appends.is_empty() {
                    results.extend(append_all(&mut sql, appends)?);
                    rest = after;
                    continue;
                }
                results.push(run(&mut sql, op)?);
                rest = rest.get(1..).unwrap_or_default();
                continue;
            }
            rest = rest.get(1..).unwrap_or_default();
            let mut savepoint = tx.savepoint("op")?;
            match run(&mut Sql { client: &mut savepoint, prepared: &mut self.prepared, lock }, op) {
                Ok(RelayStoreResult::Failed(e)) => {
                    savepoint.rollback()?;
                    results.push(RelayStoreResult::Failed(e));
                }
                Ok(result) => {
                    savepoint.commit()?;
                    results.push(result);
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
        let mut careful = false;
        loop {
            let error = match self.try_batch(ops, careful) {
                Ok(results) => {
                    self.hint(ops, &results);
                    return Batch { results, fatal: None };
                }
                Err(Fail::Db(e)) if connection_lost(&e) && Instant::now() < give_up => e,
                // Another relay's transaction stood in the way: nothing was written, try again.
                Err(Fail::Db(e)) if conflict(&e) && Instant::now() < give_up => continue,
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
        let ids = self.client.query("SELECT id FROM groups", &[])?;
        let mut out = Vec::with_capacity(ids.len());
        let mut sql = Sql { client: &mut self.client, prepared: &mut self.prepared, lock: true };
        for row in ids {
            let group_id: [u8; 32] = fixed(row.get(0)).map_err(|_| damaged())?;
            match load_group(&mut sql, &group_id, RESTORED_PUSH_IDS) {
                Ok(group) => out.extend(group),
                Err(Fail::Db(e)) => return Err(e.into()),
                Err(Fail::Damaged) => return Err(damaged()),
            }
        }
        Ok(out)
    }
}

impl PostgresStore {
    /// Tells the other relays listening on [`CHANGED`] which groups this batch appended to. A
    /// hint only, sent after the commit (not inside it, where PostgreSQL would serialise every
    /// commit on its notification queue): lost, the others' poll finds the change a little later.
    fn hint(&mut self, ops: &[RelayStoreOp], results: &[RelayStoreResult]) {
        let mut groups: Vec<&[u8]> = ops
            .iter()
            .zip(results)
            .filter_map(|(op, r)| match (op, r) {
                (RelayStoreOp::Append { group_id, .. }, RelayStoreResult::Stored { .. }) => Some(group_id.as_slice()),
                _ => None,
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if !groups.is_empty() {
            let mut sql = Sql { client: &mut self.client, prepared: &mut self.prepared, lock: true };
            let _ = sql.execute(NOTIFY, &[&groups]);
        }
    }
}

/// The channel relays over one database hear each other's appends on (payload: the group id
/// in hex).
const CHANGED: &str = "zerok_group_changed";

const NOTIFY: &str = "SELECT pg_notify('zerok_group_changed', encode(g, 'hex')) FROM unnest($1::BYTEA[]) AS g";

/// Listens on the `zerok_group_changed` channel on a thread of its own (connecting again with backoff whenever the
/// connection is lost) and calls `changed` with each group another relay appended to. Stops
/// when `changed` returns false.
pub fn listen(url: &str, mut changed: impl FnMut([u8; 32]) -> bool + Send + 'static) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut wait = Duration::from_millis(100);
        loop {
            match listen_once(&url, &mut changed) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(target: "zerok::relay", error = %e, "the database's change hints were lost: listening again");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// Returns Ok when `changed` says stop, an error when the connection is lost.
fn listen_once(url: &str, changed: &mut impl FnMut([u8; 32]) -> bool) -> std::result::Result<(), postgres::Error> {
    let mut client = connect(url)?;
    client.batch_execute(&format!("LISTEN {CHANGED}"))?;
    loop {
        let mut any = false;
        {
            let mut notifications = client.notifications();
            let mut heard = notifications.timeout_iter(Duration::from_secs(5));
            while let Some(n) = postgres::fallible_iterator::FallibleIterator::next(&mut heard)? {
                any = true;
                let group = hex::decode(n.payload()).ok().and_then(|g| <[u8; 32]>::try_from(g).ok());
                if let Some(group) = group
                    && !changed(group)
                {
                    return Ok(());
                }
            }
        }
        // Quiet for a while: ask the server, which also finds a lost connection.
        if !any {
            client.simple_query("")?;
        }
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

fn failed(ops: &[RelayStoreOp], why: &str) -> Batch {
    Batch { results: vec![RelayStoreResult::Failed(StoreError::Io); ops.len()], fatal: Some(why.to_owned()) }
}

/// A deadlock or serialisation failure: the transaction was rolled back, and may simply be
/// run again.
fn conflict(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("40"))
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
    /// Read heads `FOR UPDATE` (see [`PostgresStore::lock_rows`]).
    lock: bool,
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
            let id = group_id.as_slice();
            if tx.execute("INSERT INTO groups (id) VALUES ($1) ON CONFLICT DO NOTHING", &[&id])? == 1 {
                tx.execute("INSERT INTO members (group_id, access_key) VALUES ($1, $2)", &[&id, &key.as_slice()])?;
                return Ok(RelayStoreResult::Done);
            }
            // A creation retried, or another device's group (through this relay or another).
            let member =
                tx.query_opt("SELECT 1 FROM members WHERE group_id = $1 AND access_key = $2", &[&id, &key.as_slice()])?;
            Ok(if member.is_some() { RelayStoreResult::Done } else { RelayStoreResult::Failed(StoreError::Io) })
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
        RelayStoreOp::Append { .. } => {
            Ok(append_all(tx, std::slice::from_ref(op))?.pop().unwrap_or(RelayStoreResult::Failed(StoreError::Io)))
        }
        RelayStoreOp::LoadGroup { group_id } => Ok(RelayStoreResult::Group(load_group(tx, group_id, 0)?)),
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
        RelayStoreOp::Prune { group_id, all_acked, stored_before_ms } => {
            prune(tx, group_id, *all_acked, *stored_before_ms)
        }
    }
}

/// Locks the rows of every group the batch appends to or prunes, in id order: two relays'
/// batches then wait for each other instead of deadlocking.
fn lock_groups(tx: &mut Sql<'_, impl GenericClient>, ops: &[RelayStoreOp]) -> Result<()> {
    let mut ids: Vec<&[u8]> = ops
        .iter()
        .filter_map(|op| match op {
            RelayStoreOp::Append { group_id, .. } | RelayStoreOp::Prune { group_id, .. } => Some(group_id.as_slice()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if !ids.is_empty() {
        tx.query("SELECT 1 FROM groups WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids])?;
    }
    Ok(())
}

/// How many operations from the first are appends to one group.
fn append_run(ops: &[RelayStoreOp]) -> usize {
    let first = match ops.first() {
        Some(RelayStoreOp::Append { group_id, .. }) => group_id,
        _ => return 0,
    };
    ops.iter().take_while(|op| matches!(op, RelayStoreOp::Append { group_id, .. } if group_id == first)).count()
}

const HEAD: &str = "SELECT head, head_chain FROM groups WHERE id = $1 FOR UPDATE";
const HEAD_UNLOCKED: &str = "SELECT head, head_chain FROM groups WHERE id = $1";

/// Writes a run of appends to one group (see [`append_run`]) at the group's next cursors:
/// the head (its row locked), which of the push ids (and of the pushes they must follow) are
/// stored, then every new blob and the new head in one statement: three round trips however
/// long the run.
const APPEND_ALL: &str = "
WITH ins AS (
        INSERT INTO blobs (group_id, cursor, push_id, stored_at_ms, envelope, chain)
        SELECT $1, u.c, u.p, u.t, u.e, u.ch
        FROM unnest($2::BIGINT[], $3::BYTEA[], $4::BIGINT[], $5::BYTEA[], $6::BYTEA[]) AS u(c, p, t, e, ch)
        RETURNING 1)
UPDATE groups SET head = $7, head_chain = $8, stored_bytes = stored_bytes + $9,
    stored_blobs = stored_blobs + (SELECT COUNT(*) FROM ins)
WHERE id = $1";

fn append_all(tx: &mut Sql<'_, impl GenericClient>, run: &[RelayStoreOp]) -> Result<Vec<RelayStoreResult>> {
    let Some(RelayStoreOp::Append { group_id, .. }) = run.first() else { return Ok(Vec::new()) };
    let id = group_id.as_slice();
    let Some(head) = tx.query_opt(if tx.lock { HEAD } else { HEAD_UNLOCKED }, &[&id])? else {
        return Ok(vec![RelayStoreResult::Failed(StoreError::Io); run.len()]);
    };
    let (mut cursor, chain): (i64, Option<Vec<u8>>) = (head.get(0), head.get(1));
    let mut chain = chain.map(fixed).transpose().map_err(|_| Fail::Damaged)?;
    let mut asked: Vec<&[u8]> = Vec::new();
    for op in run {
        if let RelayStoreOp::Append { push_id, after, .. } = op {
            asked.push(push_id.as_slice());
            asked.extend(after.as_ref().map(|a| a.as_slice()));
        }
    }
    let mut stored: HashMap<Vec<u8>, i64> = HashMap::new();
    for row in
        tx.query("SELECT push_id, cursor FROM blobs WHERE group_id = $1 AND push_id = ANY($2)", &[&id, &asked])?
    {
        stored.insert(row.get(0), row.get(1));
    }
    let mut results = Vec::with_capacity(run.len());
    let mut new: Vec<StoredBlob> = Vec::new();
    for op in run {
        let RelayStoreOp::Append { push_id, stored_at_ms, envelope, after, .. } = op else { continue };
        if let Some(at) = stored.get(push_id.as_slice()) {
            results.push(RelayStoreResult::Duplicate { cursor: uint(*at) });
        } else if after.is_some_and(|a| !stored.contains_key(a.as_slice())) {
            // The push before it failed: storing this one would put it ahead.
            results.push(RelayStoreResult::Failed(StoreError::Io));
        } else {
            let blob = next_blob(group_id, uint(cursor), chain, *push_id, *stored_at_ms, envelope.clone());
            (cursor, chain) = (int(blob.cursor), Some(blob.chain));
            stored.insert(push_id.to_vec(), cursor);
            results.push(RelayStoreResult::Stored { cursor: blob.cursor, chain: blob.chain });
            new.push(blob);
        }
    }
    if let (Some(last), Some(chain)) = (new.last(), chain) {
        let cursors: Vec<i64> = new.iter().map(|b| int(b.cursor)).collect();
        let push_ids: Vec<&[u8]> = new.iter().map(|b| b.push_id.as_slice()).collect();
        let times: Vec<i64> = new.iter().map(|b| int(b.stored_at_ms)).collect();
        let envelopes: Vec<&[u8]> = new.iter().map(|b| b.envelope.0.as_slice()).collect();
        let chains: Vec<&[u8]> = new.iter().map(|b| b.chain.as_slice()).collect();
        let bytes: u64 = new.iter().map(|b| b.envelope.len() as u64).sum();
        tx.execute(
            APPEND_ALL,
            &[&id, &cursors, &push_ids, &times, &envelopes, &chains, &int(last.cursor), &chain.as_slice(), &int(bytes)],
        )?;
    }
    Ok(results)
}

/// A group as the relay loads it, with its `recent` newest push ids.
fn load_group(
    tx: &mut Sql<'_, impl GenericClient>,
    group_id: &[u8; 32],
    recent: usize,
) -> Result<Option<GroupSnapshot>> {
    let id = group_id.as_slice();
    let Some(g) = tx
        .query_opt("SELECT head, head_chain, stored_bytes, stored_blobs, earliest FROM groups WHERE id = $1", &[&id])?
    else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    let mut acked = Vec::new();
    for m in tx.query("SELECT access_key, acked FROM members WHERE group_id = $1", &[&id])? {
        let key: [u8; 32] = fixed(m.get(0)).map_err(|_| Fail::Damaged)?;
        keys.push(key);
        acked.push((key, uint(m.get(1))));
    }
    let mut recent_ids = Vec::new();
    if recent > 0 {
        for r in tx.query(
            "SELECT push_id, cursor FROM blobs WHERE group_id = $1 ORDER BY cursor DESC LIMIT $2",
            &[&id, &(recent as i64)],
        )? {
            recent_ids.push((fixed(r.get(0)).map_err(|_| Fail::Damaged)?, uint(r.get(1))));
        }
        recent_ids.reverse();
    }
    let chain: Option<Vec<u8>> = g.get(1);
    Ok(Some(GroupSnapshot {
        group_id: *group_id,
        keys,
        head: uint(g.get(0)),
        chain: chain.map(fixed).transpose().map_err(|_| Fail::Damaged)?,
        earliest: uint(g.get(4)),
        bytes: uint(g.get(2)),
        blobs: uint(g.get(3)),
        acked,
        recent: recent_ids,
    }))
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
    all_acked: bool,
    stored_before_ms: u64,
) -> Result<RelayStoreResult> {
    let id = group_id.as_slice();
    let Some(head) = tx.query_opt("SELECT head FROM groups WHERE id = $1 FOR UPDATE", &[&id])? else {
        return Ok(RelayStoreResult::Failed(StoreError::Io));
    };
    let head: i64 = head.get(0);
    // Every member's acknowledgement as the database holds it: a key another relay just
    // admitted holds pruning back.
    let min_acked: i64 =
        tx.query_one("SELECT COALESCE(MIN(acked), 0)::BIGINT FROM members WHERE group_id = $1", &[&id])?.get(0);
    let before = if all_acked { min_acked.min(head) + 1 } else { 0 };
    // The log keeps a suffix: everything from the first blob that is neither old enough nor
    // below `before`.
    let keep_from: Option<i64> = tx
        .query_one(
            "SELECT MIN(cursor) FROM blobs WHERE group_id = $1 AND cursor >= $2 AND stored_at_ms >= $3",
            &[&id, &before, &int(stored_before_ms)],
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
    fn passwords_stay_out_of_logs() {
        assert_eq!(redacted("postgres://relay:s3cret@db:5432/zerok"), "postgres://relay@db:5432/zerok");
        assert_eq!(redacted("postgres://relay@db/zerok"), "postgres://relay@db/zerok");
        assert!(!redacted("host=db password=s3cret").contains("s3cret"));
    }
}
