//! One suite, both backends: what every relay store must do. SQLite always; PostgreSQL when
//! `ZEROK_TEST_PG` names a server (a URL; each test works in a schema of its own), and the
//! suite fails without one when `ZEROK_REQUIRE_PG` is set (CI sets both).

use zerok_core::io::StoreError;
use zerok_core::relay::{RelayStoreOp, RelayStoreResult};
use zerok_core::wire::{Bytes, StoredBlob};

use super::{PostgresStore, RelayStore, SqliteStore};

pub(super) const GROUP: [u8; 32] = [1; 32];

/// A backend under test: opens its store (again), and changes its database behind its back.
trait Fixture {
    fn name(&self) -> &'static str;
    fn open(&self) -> Box<dyn RelayStore>;
    /// Runs SQL against the database directly (damage at rest, a lost connection).
    fn sql(&self, sql: &str);
}

struct Sqlite(tempfile::TempDir);

impl Fixture for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn open(&self) -> Box<dyn RelayStore> {
        Box::new(SqliteStore::open(&self.0.path().join("relay.db")).unwrap())
    }
    fn sql(&self, sql: &str) {
        rusqlite::Connection::open(self.0.path().join("relay.db")).unwrap().execute_batch(sql).unwrap();
    }
}

pub(super) struct Postgres {
    pub admin: String,
    pub url: String,
    pub schema: String,
}

impl Postgres {
    /// A fresh schema on the test server, dropped with the fixture.
    pub fn new() -> Option<Self> {
        let Ok(admin) = std::env::var("ZEROK_TEST_PG") else {
            assert!(std::env::var_os("ZEROK_REQUIRE_PG").is_none(), "ZEROK_REQUIRE_PG is set but ZEROK_TEST_PG is not");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("t{}_{}_{n}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().as_micros());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("the test PostgreSQL answers");
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{schema}&application_name={schema}");
        Some(Postgres { admin, url, schema })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

impl Fixture for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn open(&self) -> Box<dyn RelayStore> {
        Box::new(PostgresStore::connect(&self.url).unwrap())
    }
    fn sql(&self, sql: &str) {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap().batch_execute(sql).unwrap();
    }
}

/// Runs `test` against every backend there is.
fn each_backend(test: impl Fn(&dyn Fixture)) {
    test(&Sqlite(tempfile::tempdir().unwrap()));
    if let Some(pg) = Postgres::new() {
        test(&pg);
    }
}

pub(super) fn blob(cursor: u64, size: usize) -> StoredBlob {
    StoredBlob {
        cursor,
        push_id: [cursor as u8; 16],
        stored_at_ms: cursor,
        envelope: Bytes(vec![7; size]),
        chain: [cursor as u8; 32],
    }
}

pub(super) fn counts(db: &mut dyn RelayStore) -> (u64, u64, u64) {
    let s = db.snapshots().unwrap();
    (s[0].earliest, s[0].bytes, s[0].blobs)
}

/// Appends `n` blobs whose chain values link, as the relay assigns them.
pub(super) fn linked(db: &mut dyn RelayStore, n: u64) {
    let mut prev = zerok_core::log::genesis(&GROUP);
    let mut ops = vec![RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] }];
    for c in 1..=n {
        let mut b = blob(c, 100);
        b.chain = zerok_core::log::link(&prev, &b);
        prev = b.chain;
        ops.push(RelayStoreOp::Append { group_id: GROUP, blob: b, prev_cursor: c - 1 });
    }
    assert!(db.execute(&ops).fatal.is_none());
}

fn read_all(db: &mut dyn RelayStore) -> RelayStoreResult {
    let read =
        db.execute(&[RelayStoreOp::Read { group_id: GROUP, after: 0, up_to: 1000, limit: 100, max_bytes: 1 << 20 }]);
    read.results.into_iter().next().unwrap()
}

#[test]
fn stored_counts_survive_appends_prunes_and_reopening_without_a_scan() {
    each_backend(|f| {
        let mut db = f.open();
        let mut ops = vec![RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] }];
        ops.extend((1..=3).map(|c| RelayStoreOp::Append {
            group_id: GROUP,
            blob: blob(c, 100 * c as usize),
            prev_cursor: c - 1,
        }));
        assert!(db.execute(&ops).fatal.is_none(), "{}", f.name());
        assert_eq!(counts(&mut *db), (1, 600, 3), "{}", f.name());
        let recent: Vec<u64> = db.snapshots().unwrap()[0].recent.iter().map(|(_, c)| *c).collect();
        assert_eq!(recent, vec![1, 2, 3], "{}: recent push ids, oldest first, for answering resends", f.name());
        let pruned = db.execute(&[RelayStoreOp::Prune { group_id: GROUP, before: 3, stored_before_ms: 0 }]);
        assert_eq!(
            pruned.results,
            vec![RelayStoreResult::Pruned { earliest: 3, bytes: 300, blobs: 1 }],
            "{}",
            f.name()
        );
        drop(db);
        assert_eq!(counts(&mut *f.open()), (3, 300, 1), "{}", f.name());
    });
}

#[test]
fn an_append_that_does_not_extend_the_head_or_repeats_a_push_id_writes_nothing() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 2);
        let ops = [
            // Extends cursor 1, but the head is 2: a fork refused.
            RelayStoreOp::Append { group_id: GROUP, blob: blob(3, 10), prev_cursor: 1 },
            // The push id of cursor 2 again.
            RelayStoreOp::Append {
                group_id: GROUP,
                blob: StoredBlob { push_id: [2; 16], ..blob(3, 10) },
                prev_cursor: 2,
            },
            // An unknown group.
            RelayStoreOp::Append { group_id: [9; 32], blob: blob(1, 10), prev_cursor: 0 },
            // And the good one, in the same transaction as the refused ones.
            RelayStoreOp::Append { group_id: GROUP, blob: blob(3, 10), prev_cursor: 2 },
        ];
        let done = db.execute(&ops);
        assert!(done.fatal.is_none());
        assert_eq!(
            done.results,
            [
                RelayStoreResult::Failed(StoreError::Io),
                RelayStoreResult::Duplicate { cursor: 2 },
                RelayStoreResult::Failed(StoreError::Io),
                RelayStoreResult::Done
            ],
            "{}",
            f.name()
        );
        assert_eq!(counts(&mut *db), (1, 210, 3), "{}: only the good append counted", f.name());
        assert_eq!(db.snapshots().unwrap()[0].head, 3);
    });
}

#[test]
fn reads_keep_to_their_bounds_and_name_the_chain_below_even_once_pruned() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 5);
        let read = |db: &mut dyn RelayStore, after, up_to, limit, max_bytes| {
            let done = db.execute(&[RelayStoreOp::Read { group_id: GROUP, after, up_to, limit, max_bytes }]);
            match done.results.into_iter().next().unwrap() {
                RelayStoreResult::Blobs { prev_chain, blobs, more } => {
                    (prev_chain, blobs.iter().map(|b| b.cursor).collect::<Vec<_>>(), more)
                }
                other => panic!("{other:?}"),
            }
        };
        let (below, cursors, more) = read(&mut *db, 1, 4, 10, 1 << 20);
        assert_eq!((cursors, more), (vec![2, 3, 4], false), "{}", f.name());
        let RelayStoreResult::Blobs { blobs: all, .. } = read_all(&mut *db) else { panic!() };
        assert_eq!(below, Some(all[0].chain), "{}: the chain at `after`", f.name());
        assert_eq!(read(&mut *db, 0, 5, 2, 1 << 20).1, vec![1, 2], "{}: the blob limit", f.name());
        assert!(read(&mut *db, 0, 5, 2, 1 << 20).2, "{}: more", f.name());
        assert_eq!(read(&mut *db, 0, 5, 10, 150).1, vec![1], "{}: the byte limit, at least one", f.name());
        db.execute(&[RelayStoreOp::Prune { group_id: GROUP, before: 3, stored_before_ms: 0 }]);
        let (below, cursors, _) = read(&mut *db, 0, 5, 10, 1 << 20);
        assert_eq!(cursors, vec![3, 4, 5], "{}", f.name());
        assert_eq!(below, Some(all[1].chain), "{}: the last pruned blob's chain", f.name());
    });
}

#[test]
fn keys_register_only_in_known_groups_and_acks_only_move_forward() {
    each_backend(|f| {
        let mut db = f.open();
        let ops = [
            RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] },
            RelayStoreOp::RegisterKey { group_id: GROUP, key: [3; 32] },
            RelayStoreOp::RegisterKey { group_id: [9; 32], key: [3; 32] },
            RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 7 },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 5 },
        ];
        let done = db.execute(&ops);
        assert_eq!(done.results[2], RelayStoreResult::Failed(StoreError::Io), "{}", f.name());
        assert_eq!(done.results[3], RelayStoreResult::Done, "{}: creating again is harmless", f.name());
        let snapshot = db.snapshots().unwrap();
        assert_eq!(snapshot.len(), 1, "{}", f.name());
        let mut keys = snapshot[0].keys.clone();
        keys.sort();
        assert_eq!(keys, [[2; 32], [3; 32]], "{}", f.name());
        assert!(snapshot[0].acked.contains(&([3; 32], 7)), "{}: {:?}", f.name(), snapshot[0].acked);
    });
}

#[test]
fn a_log_damaged_at_rest_is_repaired_at_open_without_looking_pruned() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 6);
        assert!(db.repair_chains().unwrap().is_empty(), "{}: an intact log is left alone", f.name());
        drop(db);
        f.sql(
            "DELETE FROM blobs WHERE cursor = 1; UPDATE blobs SET envelope = substr(envelope, 1, 1) WHERE cursor = 4;",
        );
        let mut db = f.open();
        let repairs = db.repair_chains().unwrap();
        assert_eq!(repairs.len(), 1, "{}", f.name());
        assert_eq!(repairs[0].1.dropped, [2, 4], "{}: the row after the deleted one, and the altered one", f.name());
        assert_eq!(counts(&mut *db), (1, 300, 3), "{}: nothing was pruned: history still starts at 1", f.name());
        let RelayStoreResult::Blobs { prev_chain, blobs, .. } = read_all(&mut *db) else { panic!() };
        let mut chain = prev_chain.unwrap_or_else(|| zerok_core::log::genesis(&GROUP));
        for b in &blobs {
            assert_eq!(zerok_core::log::link(&chain, b), b.chain, "{}: cursor {} extends the log", f.name(), b.cursor);
            chain = b.chain;
        }
        assert_eq!(db.snapshots().unwrap()[0].chain, Some(chain), "{}: the head states the repaired chain", f.name());
        assert!(db.repair_chains().unwrap().is_empty(), "{}: a repaired log stays repaired", f.name());
    });
}

/// The server restarted, or the network dropped the connection: the store connects again and
/// runs the batch again, and the relay never notices.
#[test]
fn a_lost_database_connection_is_made_again_and_the_batch_run_again() {
    let Some(pg) = Postgres::new() else { return };
    let mut db = pg.open();
    linked(&mut *db, 2);
    pg.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}' AND pid <> pg_backend_pid()",
        pg.schema
    ));
    let mut third = blob(3, 10);
    let RelayStoreResult::Blobs { blobs, .. } = read_all(&mut *db) else { panic!() };
    third.chain = zerok_core::log::link(&blobs[1].chain, &third);
    let done = db.execute(&[RelayStoreOp::Append { group_id: GROUP, blob: third, prev_cursor: 2 }]);
    assert!(done.fatal.is_none());
    assert_eq!(done.results, [RelayStoreResult::Done]);
    assert_eq!(db.snapshots().unwrap()[0].head, 3);
}

/// An operation that fails with a database error (here a row already at the cursor the head
/// says is free: damage) fails alone; the rest of its transaction commits.
#[test]
fn an_operation_failing_with_an_error_fails_alone() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 2);
        drop(db);
        f.sql("UPDATE groups SET head = 1");
        let mut db = f.open();
        let ops = [
            RelayStoreOp::RegisterKey { group_id: GROUP, key: [3; 32] },
            RelayStoreOp::Append {
                group_id: GROUP,
                blob: StoredBlob { push_id: [9; 16], ..blob(2, 10) },
                prev_cursor: 1,
            },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 1 },
        ];
        let done = db.execute(&ops);
        assert!(done.fatal.is_none(), "{}", f.name());
        assert_eq!(
            done.results,
            [RelayStoreResult::Done, RelayStoreResult::Failed(StoreError::Io), RelayStoreResult::Done],
            "{}",
            f.name()
        );
        let snapshot = &db.snapshots().unwrap()[0];
        assert!(snapshot.acked.contains(&([3; 32], 1)), "{}: the others committed", f.name());
    });
}

/// Appends that extend each other are written together when they can be; when one of them is
/// a resend, each is answered on its own, as if applied one by one.
#[test]
fn a_run_of_appends_with_a_resend_among_them_is_answered_append_by_append() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 2);
        let ops = [
            RelayStoreOp::Append { group_id: GROUP, blob: blob(3, 10), prev_cursor: 2 },
            RelayStoreOp::Append {
                group_id: GROUP,
                blob: StoredBlob { push_id: [1; 16], ..blob(4, 10) },
                prev_cursor: 3,
            },
            RelayStoreOp::Append { group_id: GROUP, blob: blob(5, 10), prev_cursor: 4 },
        ];
        let done = db.execute(&ops);
        assert_eq!(
            done.results,
            [
                RelayStoreResult::Done,
                RelayStoreResult::Duplicate { cursor: 1 },
                RelayStoreResult::Failed(StoreError::Io)
            ],
            "{}",
            f.name()
        );
        assert_eq!(db.snapshots().unwrap()[0].head, 3, "{}", f.name());
        assert_eq!(counts(&mut *db), (1, 210, 3), "{}", f.name());
    });
}
