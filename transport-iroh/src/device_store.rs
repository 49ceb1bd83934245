//! A device's durable store on SQLite: its signing key, group membership, its own sealed blobs
//! (the outbox; `sent` marks those the relay acknowledged, kept until the relay prunes past
//! them), cursor and log chain value, other senders' chains, and the inbox of received blobs
//! the app pulls from. Each core [`ClientStoreOp`] is one transaction. The file is readable by
//! its owner only.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use zerok_core::client::{ClientState, ClientStoreOp, Membership, OutboxEntry, ReceivedBlob, SenderView, kv};
use zerok_core::io::StoreError;
use zerok_core::keys::{DeviceId, DeviceSigningKey};

use crate::sql::{array, commit_batch, int, store_error, uint};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (push_id BLOB PRIMARY KEY, seq INTEGER NOT NULL, envelope BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sent (push_id BLOB PRIMARY KEY, cursor INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS senders (device BLOB PRIMARY KEY, last_seq INTEGER NOT NULL, last_hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cursor INTEGER NOT NULL,
    push_id BLOB NOT NULL,
    sender BLOB NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    stored_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_cursor ON inbox (cursor);
";

/// The device database.
pub struct DeviceDb {
    conn: Connection,
}

impl DeviceDb {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = crate::sql::open(path)?;
        conn.execute_batch(SCHEMA)?;
        crate::sql::add_column_once(&conn, "senders", "last_cursor", "INTEGER NOT NULL DEFAULT 0")?;
        crate::sql::add_column_once(&conn, "senders", "given_up", "BLOB NOT NULL DEFAULT x''")?;
        Ok(DeviceDb { conn })
    }

    /// This device's signing key, created on first use.
    pub fn device_key<E: From<rusqlite::Error>>(
        &mut self,
        fresh: impl FnOnce() -> Result<[u8; 32], E>,
    ) -> Result<DeviceSigningKey, E> {
        if let Some(bytes) = self.meta("device_key")? {
            return Ok(DeviceSigningKey::from_bytes(&array(bytes)?));
        }
        // Nothing is stored unless a seed came: a failed source of randomness never leaves a
        // predictable key behind (it stored an all-zero one, issue 14).
        let seed = zeroize::Zeroizing::new(fresh()?);
        self.conn.execute("INSERT INTO meta (name, value) VALUES ('device_key', ?1)", params![seed.as_slice()])?;
        Ok(DeviceSigningKey::from_bytes(&seed))
    }

    /// Everything the client loads at start.
    pub fn load(&self) -> rusqlite::Result<ClientState> {
        let mut state = ClientState {
            membership: self.meta("membership")?.map(|b| decode_membership(&b)).transpose()?,
            next_seq: self.meta_u64("next_seq")?.unwrap_or(1),
            last_hash: self.meta("last_hash")?.map(array).transpose()?.unwrap_or([0; 32]),
            cursor: self.meta_u64("cursor")?.unwrap_or(0),
            log_chain: self.meta("log_chain")?.map(array).transpose()?,
            highest_head: self.meta_u64("highest_head")?.unwrap_or(0),
            trust_floor: self.meta_u64("trust_floor")?.unwrap_or(0),
            ..ClientState::default()
        };
        let mut outbox = self.conn.prepare("SELECT push_id, seq, envelope FROM outbox ORDER BY seq")?;
        for e in outbox.query_map([], |r| {
            Ok(OutboxEntry { push_id: array(r.get(0)?)?, seq: uint(r.get(1)?), envelope: r.get(2)? })
        })? {
            state.outbox.push(e?);
        }
        let mut sent_rows = self.conn.prepare("SELECT push_id, cursor FROM sent")?;
        let sent = sent_rows
            .query_map([], |r| Ok((array(r.get(0)?)?, uint(r.get(1)?))))?
            .collect::<rusqlite::Result<std::collections::BTreeMap<[u8; 16], u64>>>()?;
        kv::split_sent(&mut state, &sent);
        let mut senders =
            self.conn.prepare("SELECT device, last_seq, last_hash, last_cursor, given_up FROM senders")?;
        for s in senders.query_map([], |r| {
            let view = SenderView {
                last_seq: uint(r.get(1)?),
                last_hash: array(r.get(2)?)?,
                last_cursor: uint(r.get(3)?),
                given_up: kv::decode_given_up(&r.get::<_, Vec<u8>>(4)?).ok_or_else(|| {
                    rusqlite::Error::InvalidColumnType(4, "given_up".into(), rusqlite::types::Type::Blob)
                })?,
            };
            Ok((DeviceId(array(r.get(0)?)?), view))
        })? {
            let (d, v) = s?;
            state.senders.insert(d, v);
        }
        Ok(state)
    }

    /// Applies one operation atomically.
    pub fn apply(&mut self, op: &ClientStoreOp) -> Result<(), StoreError> {
        self.apply_all(std::slice::from_ref(op)).pop().unwrap_or(Err(StoreError::Io))
    }

    /// Applies operations in one transaction (one fsync), each atomically: a failed one leaves
    /// no trace and the others stand.
    pub fn apply_all(&mut self, ops: &[ClientStoreOp]) -> Vec<Result<(), StoreError>> {
        commit_batch(&mut self.conn, ops, |conn, op| write(conn, op).map_err(|e| store_error(&e))).0
    }

    /// Received blobs with `cursor > after`, in the order they were applied, at most `limit`.
    pub fn inbox(&self, after: u64, limit: usize) -> rusqlite::Result<Vec<ReceivedBlob>> {
        let rows = self.received("cursor", after, limit)?;
        Ok(rows.into_iter().map(|(_, b)| b).collect())
    }

    /// Received blobs in the order they arrived, after arrival number `after` (0: from the
    /// first), at most `limit`, each with its arrival number. Unlike [`Self::inbox`] this never
    /// shows an old blob again when a rolled-back relay reuses its cursor.
    pub fn arrivals(&self, after: u64, limit: usize) -> rusqlite::Result<Vec<(u64, ReceivedBlob)>> {
        self.received("id", after, limit)
    }

    /// Inbox rows with `column > after` in arrival order, with their arrival numbers.
    fn received(&self, column: &str, after: u64, limit: usize) -> rusqlite::Result<Vec<(u64, ReceivedBlob)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, cursor, push_id, sender, seq, payload, stored_at_ms FROM inbox WHERE {column} > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![int(after), int(limit as u64)], |r| {
            let blob = ReceivedBlob {
                cursor: uint(r.get(1)?),
                push_id: array(r.get(2)?)?,
                sender: DeviceId(array(r.get(3)?)?),
                seq: uint(r.get(4)?),
                payload: r.get(5)?,
                stored_at_ms: uint(r.get(6)?),
            };
            Ok((uint(r.get(0)?), blob))
        })?;
        rows.collect()
    }

    fn meta(&self, name: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn.query_row("SELECT value FROM meta WHERE name = ?1", params![name], |r| r.get(0)).optional()
    }

    fn meta_u64(&self, name: &str) -> rusqlite::Result<Option<u64>> {
        Ok(self.meta(name)?.map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))))
    }
}

fn decode_membership(b: &[u8]) -> rusqlite::Result<Membership> {
    kv::decode_membership(b)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "membership".into(), rusqlite::types::Type::Blob))
}

fn set_meta(conn: &Connection, name: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)")?.execute(params![name, value])?;
    Ok(())
}

fn mark_sent(conn: &Connection, acked: &[([u8; 16], u64)]) -> rusqlite::Result<()> {
    for (id, cursor) in acked {
        conn.prepare_cached("INSERT OR REPLACE INTO sent (push_id, cursor) VALUES (?1, ?2)")?
            .execute(params![id, int(*cursor)])?;
    }
    Ok(())
}

fn write(conn: &Connection, op: &ClientStoreOp) -> rusqlite::Result<()> {
    match op {
        ClientStoreOp::SaveMembership(m) => set_meta(conn, "membership", &kv::encode_membership(m)),
        ClientStoreOp::AppendOutbox { entries, next_seq, last_hash } => {
            for e in entries {
                conn.prepare_cached("INSERT OR REPLACE INTO outbox (push_id, seq, envelope) VALUES (?1, ?2, ?3)")?
                    .execute(params![e.push_id, int(e.seq), e.envelope])?;
            }
            set_meta(conn, "next_seq", &next_seq.to_le_bytes())?;
            set_meta(conn, "last_hash", last_hash)
        }
        ClientStoreOp::MarkSent { acked, highest_head } => {
            mark_sent(conn, acked)?;
            set_meta(conn, "highest_head", &highest_head.to_le_bytes())
        }
        ClientStoreOp::Requeue { push_ids } => {
            for id in push_ids {
                conn.prepare_cached("DELETE FROM sent WHERE push_id = ?1")?.execute(params![id])?;
            }
            Ok(())
        }
        ClientStoreOp::ForgetSent { push_ids } => {
            for id in push_ids {
                conn.prepare_cached("DELETE FROM sent WHERE push_id = ?1")?.execute(params![id])?;
                conn.prepare_cached("DELETE FROM outbox WHERE push_id = ?1")?.execute(params![id])?;
            }
            Ok(())
        }
        ClientStoreOp::Deliver { blobs, cursor, log_chain, senders, highest_head, trust_floor, sent } => {
            mark_sent(conn, sent)?;
            for b in blobs {
                conn.prepare_cached(
                    "INSERT INTO inbox (cursor, push_id, sender, seq, payload, stored_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![int(b.cursor), b.push_id, b.sender.0, int(b.seq), b.payload, int(b.stored_at_ms)])?;
            }
            for (d, v) in senders {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO senders (device, last_seq, last_hash, last_cursor, given_up)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    d.0,
                    int(v.last_seq),
                    v.last_hash,
                    int(v.last_cursor),
                    kv::encode_given_up(&v.given_up)
                ])?;
            }
            set_meta(conn, "cursor", &cursor.to_le_bytes())?;
            match log_chain {
                Some(c) => set_meta(conn, "log_chain", c)?,
                None => {
                    conn.execute("DELETE FROM meta WHERE name = 'log_chain'", [])?;
                }
            }
            set_meta(conn, "highest_head", &highest_head.to_le_bytes())?;
            set_meta(conn, "trust_floor", &trust_floor.to_le_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerok_core::client::{PendingCreation, RelayInfo};
    use zerok_core::keys::{EpochSecret, GroupId, NoiseKeypair, NoisePublic};

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let mut rng = zerok_core::CoreRng::from_seed([1; 32]);
        let membership = Membership {
            group_id: GroupId::random(&mut rng),
            epoch: 3,
            epoch_secret: EpochSecret::random(&mut rng),
            access_key: NoiseKeypair::generate(&mut rng),
            relay: RelayInfo {
                endpoint_id: [4; 32],
                noise_key: NoisePublic([5; 32]),
                addrs: vec!["127.0.0.1:9".into()],
            },
            pending_creation: Some(PendingCreation { admission_token: Some(b"tok".to_vec()) }),
            introduced: Vec::new(),
        };
        let key = {
            let mut db = DeviceDb::open(&path).unwrap();
            let failed: Result<_, rusqlite::Error> = db.device_key(|| Err(rusqlite::Error::InvalidQuery));
            assert!(failed.is_err(), "no randomness, no key");
            let key = db.device_key(|| Ok::<_, rusqlite::Error>([7; 32])).unwrap();
            assert_eq!(
                key.device_id(),
                DeviceSigningKey::from_bytes(&[7; 32]).device_id(),
                "nothing was stored before"
            );
            db.apply(&ClientStoreOp::SaveMembership(Box::new(membership.clone()))).unwrap();
            let entry = OutboxEntry { push_id: [1; 16], seq: 1, envelope: vec![9; 40] };
            db.apply(&ClientStoreOp::AppendOutbox { entries: vec![entry], next_seq: 2, last_hash: [8; 32] }).unwrap();
            let blob = ReceivedBlob {
                cursor: 5,
                push_id: [2; 16],
                sender: DeviceId([3; 32]),
                seq: 1,
                payload: b"hi".to_vec(),
                stored_at_ms: 11,
            };
            let view = SenderView {
                last_seq: 1,
                last_hash: [6; 32],
                last_cursor: 5,
                given_up: vec![zerok_core::client::GivenUp { next_seq: 3, to_seq: 4, prev_hash: [2; 32] }],
            };
            db.apply(&ClientStoreOp::Deliver {
                blobs: vec![blob],
                cursor: 5,
                log_chain: Some([12; 32]),
                senders: vec![(DeviceId([3; 32]), view)],
                highest_head: 6,
                trust_floor: 3,
                sent: Vec::new(),
            })
            .unwrap();
            let second = OutboxEntry { push_id: [4; 16], seq: 2, envelope: vec![1; 8] };
            db.apply(&ClientStoreOp::AppendOutbox { entries: vec![second], next_seq: 3, last_hash: [9; 32] }).unwrap();
            db.apply(&ClientStoreOp::MarkSent { acked: vec![([1; 16], 7), ([4; 16], 8)], highest_head: 9 }).unwrap();
            db.apply(&ClientStoreOp::Requeue { push_ids: vec![[4; 16]] }).unwrap();
            key.device_id()
        };
        let mut db = DeviceDb::open(&path).unwrap();
        assert_eq!(
            db.device_key(|| Ok::<_, rusqlite::Error>([0; 32])).unwrap().device_id(),
            key,
            "the key is created once"
        );
        let state = db.load().unwrap();
        assert_eq!(state.membership, Some(membership));
        assert_eq!((state.next_seq, state.last_hash, state.cursor), (3, [9; 32], 5));
        assert_eq!((state.log_chain, state.highest_head, state.trust_floor), (Some([12; 32]), 9, 3));
        assert_eq!(state.outbox.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2], "the requeued one is unsent");
        assert_eq!(state.sent.keys().copied().collect::<Vec<_>>(), vec![7], "the sent one is kept at its cursor");
        assert_eq!(
            state.senders.get(&DeviceId([3; 32])).map(|v| (v.last_seq, v.last_cursor, v.given_up.len())),
            Some((1, 5, 1))
        );
        db.apply(&ClientStoreOp::ForgetSent { push_ids: vec![[1; 16]] }).unwrap();
        assert!(db.load().unwrap().sent.is_empty());
        assert_eq!(db.inbox(0, 10).unwrap().len(), 1);
        assert!(db.inbox(5, 10).unwrap().is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
