//! One suite, both backends: what every relay store must do. SQLite always; PostgreSQL when
//! `ZEROK_TEST_PG` names a server (a URL; each test works in a schema of its own), and the
//! suite fails without one when `ZEROK_REQUIRE_PG` is set (CI sets both).

use zerok_core::io::StoreError;
use zerok_core::relay::{RelayStoreOp, RelayStoreResult};
use zerok_core::wire::Bytes;

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

/// An append of push `id` (its envelope `size` bytes of 7, stored at `id` ms).
pub(super) fn append(id: u8, size: usize, after: Option<u8>) -> RelayStoreOp {
    RelayStoreOp::Append {
        group_id: GROUP,
        push_id: [id; 16],
        stored_at_ms: u64::from(id),
        envelope: Bytes(vec![7; size]),
        after: after.map(|a| [a; 16]),
    }
}

pub(super) fn counts(db: &mut dyn RelayStore) -> (u64, u64, u64) {
    let s = db.snapshots().unwrap();
    (s[0].earliest, s[0].bytes, s[0].blobs)
}

/// Creates the group and appends pushes 1..=n of 100 bytes.
pub(super) fn linked(db: &mut dyn RelayStore, n: u8) {
    let mut ops = vec![RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] }];
    ops.extend((1..=n).map(|id| append(id, 100, None)));
    assert!(db.execute(&ops).fatal.is_none());
}

fn read_all(db: &mut dyn RelayStore) -> RelayStoreResult {
    let read =
        db.execute(&[RelayStoreOp::Read { group_id: GROUP, after: 0, up_to: 1000, limit: 100, max_bytes: 1 << 20 }]);
    read.results.into_iter().next().unwrap()
}

/// The group's log, checked: each chain value extending the one before from genesis (or the
/// pruned chain). Returns (cursor, push id) in order.
fn verified_log(db: &mut dyn RelayStore, name: &str) -> Vec<(u64, [u8; 16])> {
    let RelayStoreResult::Blobs { prev_chain, blobs, more } = read_all(db) else { panic!("{name}: no log") };
    assert!(!more, "{name}");
    let mut chain = prev_chain.unwrap_or_else(|| zerok_core::log::genesis(&GROUP));
    for b in &blobs {
        assert_eq!(zerok_core::log::link(&chain, b), b.chain, "{name}: cursor {} extends the log", b.cursor);
        chain = b.chain;
    }
    blobs.iter().map(|b| (b.cursor, b.push_id)).collect()
}

fn stored_at(result: &RelayStoreResult) -> Option<u64> {
    match result {
        RelayStoreResult::Stored { cursor, .. } => Some(*cursor),
        _ => None,
    }
}

#[test]
fn stored_counts_survive_appends_prunes_and_reopening_without_a_scan() {
    each_backend(|f| {
        let mut db = f.open();
        let mut ops = vec![RelayStoreOp::CreateGroup { group_id: GROUP, key: [2; 32] }];
        ops.extend((1..=3).map(|id| append(id, 100 * id as usize, None)));
        assert!(db.execute(&ops).fatal.is_none(), "{}", f.name());
        assert_eq!(counts(&mut *db), (1, 600, 3), "{}", f.name());
        let recent: Vec<u64> = db.snapshots().unwrap()[0].recent.iter().map(|(_, c)| *c).collect();
        assert_eq!(recent, vec![1, 2, 3], "{}: recent push ids, oldest first, for answering resends", f.name());
        let prune = [
            RelayStoreOp::SaveAck { group_id: GROUP, key: [2; 32], cursor: 2 },
            RelayStoreOp::Prune { group_id: GROUP, all_acked: true, stored_before_ms: 0 },
        ];
        let pruned = db.execute(&prune);
        assert_eq!(pruned.results[1], RelayStoreResult::Pruned { earliest: 3, bytes: 300, blobs: 1 }, "{}", f.name());
        drop(db);
        assert_eq!(counts(&mut *f.open()), (3, 300, 1), "{}", f.name());
    });
}

#[test]
fn the_store_assigns_the_next_cursor_and_chain_and_refuses_repeats_and_pushes_out_of_order() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 2);
        let ops = [
            append(3, 10, None),
            // The push id of cursor 2 again.
            append(2, 10, None),
            // An unknown group.
            RelayStoreOp::Append {
                group_id: [9; 32],
                push_id: [4; 16],
                stored_at_ms: 0,
                envelope: Bytes(vec![1]),
                after: None,
            },
            // After a push the store does not hold: it would overtake it.
            append(5, 10, Some(8)),
            // After one stored in the same transaction.
            append(6, 10, Some(3)),
        ];
        let done = db.execute(&ops);
        assert!(done.fatal.is_none());
        let cursors: Vec<Option<u64>> = done.results.iter().map(stored_at).collect();
        assert_eq!(cursors, [Some(3), None, None, None, Some(4)], "{}: {:?}", f.name(), done.results);
        assert_eq!(done.results[1], RelayStoreResult::Duplicate { cursor: 2 }, "{}", f.name());
        assert_eq!(done.results[2], RelayStoreResult::Failed(StoreError::Io), "{}", f.name());
        assert_eq!(done.results[3], RelayStoreResult::Failed(StoreError::Io), "{}", f.name());
        assert_eq!(counts(&mut *db), (1, 220, 4), "{}: only the stored appends counted", f.name());
        let log = verified_log(&mut *db, f.name());
        assert_eq!(log, [1, 2, 3, 6].map(|id: u8| (u64::from(id.min(4)), [id; 16])), "{}", f.name());
        let snapshot = &db.snapshots().unwrap()[0];
        let RelayStoreResult::Stored { chain, .. } = done.results[4] else { panic!() };
        assert_eq!((snapshot.head, snapshot.chain), (4, Some(chain)), "{}: the answer is the head", f.name());
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
        // Pushes 1 and 2 were stored at 1 and 2 ms.
        db.execute(&[RelayStoreOp::Prune { group_id: GROUP, all_acked: false, stored_before_ms: 3 }]);
        let (below, cursors, _) = read(&mut *db, 0, 5, 10, 1 << 20);
        assert_eq!(cursors, vec![3, 4, 5], "{}", f.name());
        assert_eq!(below, Some(all[1].chain), "{}: the last pruned blob's chain", f.name());
    });
}

#[test]
fn pruning_waits_for_every_member_the_store_holds() {
    each_backend(|f| {
        let mut db = f.open();
        linked(&mut *db, 4);
        let ops = [
            RelayStoreOp::SaveAck { group_id: GROUP, key: [2; 32], cursor: 4 },
            // Admitted (through another relay, say) and acknowledging nothing yet.
            RelayStoreOp::RegisterKey { group_id: GROUP, key: [3; 32] },
            RelayStoreOp::Prune { group_id: GROUP, all_acked: true, stored_before_ms: 0 },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 2 },
            RelayStoreOp::Prune { group_id: GROUP, all_acked: true, stored_before_ms: 0 },
        ];
        let done = db.execute(&ops);
        assert_eq!(done.results[2], RelayStoreResult::Pruned { earliest: 1, bytes: 400, blobs: 4 }, "{}", f.name());
        assert_eq!(done.results[4], RelayStoreResult::Pruned { earliest: 3, bytes: 200, blobs: 2 }, "{}", f.name());
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
            RelayStoreOp::CreateGroup { group_id: GROUP, key: [4; 32] },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 7 },
            RelayStoreOp::SaveAck { group_id: GROUP, key: [3; 32], cursor: 5 },
            RelayStoreOp::LoadGroup { group_id: [9; 32] },
        ];
        let done = db.execute(&ops);
        assert_eq!(done.results[2], RelayStoreResult::Failed(StoreError::Io), "{}", f.name());
        assert_eq!(done.results[3], RelayStoreResult::Done, "{}: a creation retried is harmless", f.name());
        assert_eq!(done.results[4], RelayStoreResult::Failed(StoreError::Io), "{}: another's group", f.name());
        assert_eq!(done.results[7], RelayStoreResult::Group(None), "{}", f.name());
        let snapshot = db.snapshots().unwrap();
        assert_eq!(snapshot.len(), 1, "{}", f.name());
        let mut keys = snapshot[0].keys.clone();
        keys.sort();
        assert_eq!(keys, [[2; 32], [3; 32]], "{}", f.name());
        assert!(snapshot[0].acked.contains(&([3; 32], 7)), "{}: {:?}", f.name(), snapshot[0].acked);
        let loaded = db.execute(&[RelayStoreOp::LoadGroup { group_id: GROUP }]);
        let expected = zerok_core::relay::GroupSnapshot { recent: Vec::new(), ..snapshot[0].clone() };
        assert_eq!(loaded.results, [RelayStoreResult::Group(Some(expected))], "{}", f.name());
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
        let next = db.execute(&[append(7, 10, None)]);
        assert_eq!(stored_at(&next.results[0]), Some(7), "{}: appends go on after the repaired head", f.name());
        verified_log(&mut *db, f.name());
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
    let done = db.execute(&[append(3, 10, Some(2))]);
    assert!(done.fatal.is_none());
    assert_eq!(stored_at(&done.results[0]), Some(3));
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
            append(9, 10, None),
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

/// Several relays over one database, each with its own connection, appending at once into 1
/// and into 10 groups, with resends: every cursor dense per group, every chain verified from
/// genesis, each push id stored once, each sender's pushes in its order, and no append refused.
#[test]
fn relays_over_one_database_append_at_once_without_forks_gaps_or_refusals() {
    let Some(pg) = Postgres::new() else { return };
    for groups in [1, 10] {
        let refused = concurrent_appends(&pg, groups, true);
        assert_eq!(refused, 0, "{groups} groups: no append is refused under the row lock");
    }
}

/// The planted bug: heads read without the row lock. Two relays then both take the same next
/// cursor; the database refuses the second, and the check above must see it.
#[test]
fn without_the_row_lock_concurrent_appends_are_refused() {
    let Some(pg) = Postgres::new() else { return };
    assert!(concurrent_appends(&pg, 1, false) > 0, "the planted bug was not caught");
}

/// Runs 4 relays × 3 senders each pushing 60 blobs (in batches of up to 4 per sender, each
/// after the sender's previous one, a third of batches with an earlier push sent again) into
/// `groups` groups; checks every log and returns how many appends were refused.
fn concurrent_appends(pg: &Postgres, groups: u8, lock_rows: bool) -> usize {
    const RELAYS: u8 = 4;
    const SENDERS: u8 = 3;
    const PUSHES: u16 = 60;
    let group = |g: u8| {
        let mut id = [groups; 32];
        id[1] = g;
        id
    };
    let mut setup = pg.open();
    let create: Vec<_> = (0..groups).map(|g| RelayStoreOp::CreateGroup { group_id: group(g), key: [2; 32] }).collect();
    setup.execute(&create);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for relay in 0..RELAYS {
            let refused = &refused;
            scope.spawn(move || {
                let mut db = PostgresStore::connect(&pg.url).unwrap();
                db.lock_rows = lock_rows;
                let mut rng = zerok_core::CoreRng::from_seed([relay + 1; 32]);
                let push_id = |sender: u8, n: u16| {
                    let mut id = [0; 16];
                    id[..3].copy_from_slice(&[relay, sender, 0]);
                    id[3..5].copy_from_slice(&n.to_be_bytes());
                    id
                };
                let mut next = [0u16; SENDERS as usize];
                while next.iter().any(|n| *n < PUSHES) {
                    let mut ops = Vec::new();
                    let mut sent = Vec::new();
                    for sender in 0..SENDERS {
                        let from = next[sender as usize];
                        let to = (from + 1 + rng.below(4) as u16).min(PUSHES);
                        let group_id = group((relay * SENDERS + sender) % groups);
                        if from > 0 && rng.below(3) == 0 {
                            let id = push_id(sender, rng.below(u64::from(from)) as u16);
                            let envelope = Bytes(vec![9; 40]);
                            ops.push(RelayStoreOp::Append {
                                group_id,
                                push_id: id,
                                stored_at_ms: 0,
                                envelope,
                                after: None,
                            });
                            sent.push(None);
                        }
                        for n in from..to {
                            let after = (n > from).then(|| push_id(sender, n - 1));
                            let envelope = Bytes(vec![n as u8; 40]);
                            let id = push_id(sender, n);
                            ops.push(RelayStoreOp::Append { group_id, push_id: id, stored_at_ms: 0, envelope, after });
                            sent.push(Some((sender, n)));
                        }
                    }
                    let done = db.execute(&ops);
                    assert!(done.fatal.is_none(), "{:?}", done.fatal);
                    for (result, sent) in done.results.iter().zip(sent) {
                        match (result, sent) {
                            (RelayStoreResult::Failed(_), _) => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            (RelayStoreResult::Duplicate { .. }, Some(_)) => panic!("a new push seen as stored"),
                            (_, Some((sender, n))) if next[sender as usize] == n => next[sender as usize] = n + 1,
                            _ => {}
                        }
                    }
                }
            });
        }
    });
    for g in 0..groups {
        let read = setup.execute(&[RelayStoreOp::Read {
            group_id: group(g),
            after: 0,
            up_to: u64::MAX / 2,
            limit: 10_000,
            max_bytes: usize::MAX,
        }]);
        let RelayStoreResult::Blobs { blobs, more: false, .. } = &read.results[0] else { panic!("{:?}", read.results) };
        let mut chain = zerok_core::log::genesis(&group(g));
        let mut seen = std::collections::HashSet::new();
        let mut last: std::collections::HashMap<[u8; 2], u16> = Default::default();
        for (i, b) in blobs.iter().enumerate() {
            assert_eq!(b.cursor, i as u64 + 1, "group {g}: cursors are dense");
            assert_eq!(zerok_core::log::link(&chain, b), b.chain, "group {g}: cursor {} forks the log", b.cursor);
            chain = b.chain;
            assert!(seen.insert(b.push_id), "group {g}: push id stored twice");
            let n = u16::from_be_bytes([b.push_id[3], b.push_id[4]]);
            let sender = [b.push_id[0], b.push_id[1]];
            assert!(last.get(&sender).is_none_or(|prev| *prev < n), "group {g}: a sender's order broken");
            last.insert(sender, n);
        }
    }
    let total: usize = (0..groups)
        .map(|g| match &setup.execute(&[RelayStoreOp::LoadGroup { group_id: group(g) }]).results[0] {
            RelayStoreResult::Group(Some(s)) => s.blobs as usize,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(total, usize::from(RELAYS) * usize::from(SENDERS) * usize::from(PUSHES), "every push stored once");
    refused.into_inner()
}
