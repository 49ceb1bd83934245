//! Real histories on the real binaries, each command a fresh `zerok` process as a CLI user (or a
//! relaunched app) runs it: a relay with retention on and devices that join after a prune; a
//! relay restored from an older backup.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{free_udp_port, start_relay};

/// Runs `zerok ARGS --data-dir DIR` to completion.
fn zerok(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{:?}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    (stdout, stderr)
}

fn push(dir: &Path, payload: &str) {
    let (stdout, _) = ok(zerok(dir, &["push", "-"], payload.as_bytes()));
    assert!(stdout.contains("stored by the relay at cursor"), "{stdout}");
}

/// Pairs `joiner` into `member`'s group: `zerok invite` runs until `zerok join` has used the code.
/// Returns what `zerok join` printed on stderr.
fn pair(member: &Path, joiner: &Path, conn: &str) -> String {
    let mut invite = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["invite", "--data-dir"])
        .arg(member)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(invite.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines.next().expect("zerok invite prints a short code").unwrap();
        if let Some(code) = line.strip_prefix("short code: ") {
            break code.to_owned();
        }
    };
    let joined = zerok(joiner, &["join", "--relay", conn, &code], b"");
    let (stdout, stderr) = text(&joined);
    let inviter = invite.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&inviter.stderr);
    assert!(joined.status.success(), "zerok join: {:?}\n{stdout}\n{stderr}\nzerok invite said: {said}", joined.status);
    assert!(inviter.status.success(), "zerok invite: {:?}\n{said}", inviter.status);
    stderr
}

/// The payloads `zerok pull` prints, in order.
fn pulled(stdout: &str) -> Vec<String> {
    stdout.lines().filter_map(|l| l.splitn(3, '\t').nth(2)).map(str::to_owned).collect()
}

#[test]
fn a_device_that_joins_after_a_prune_gets_every_retained_blob_and_is_told_history_starts_later() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, conn) = start_relay(&dir.path().join("relay"), &["--bind", "127.0.0.1:0", "--retention-all-acked"]);
    let (alice, bob, carol) = (dir.path().join("alice"), dir.path().join("bob"), dir.path().join("carol"));
    ok(zerok(&alice, &["init", "--relay", &conn], b""));
    pair(&alice, &bob, &conn);
    for i in 1..=3 {
        push(&alice, &format!("alice {i}"));
        push(&bob, &format!("bob {i}"));
    }
    // Both members read everything: the relay prunes it all once every member acknowledged it
    // (an acknowledgement can be lost when a command exits right after sending it: read again).
    let oldest = || {
        let db = rusqlite::Connection::open(dir.path().join("relay/relay.db")).unwrap();
        db.query_row("SELECT MIN(cursor) FROM blobs", [], |r| r.get::<_, Option<i64>>(0)).unwrap()
    };
    for _ in 0..10 {
        for d in [&alice, &bob] {
            ok(zerok(d, &["pull"], b""));
        }
        if oldest().is_none() {
            break;
        }
    }
    assert_eq!(oldest(), None, "the relay pruned what both members had");
    // Retained: pushed after the prune, by senders whose first blobs are gone.
    push(&bob, "bob 4");
    push(&alice, "alice 4");
    push(&bob, "bob 5");

    // Every member's command reads the log and acknowledges it, so pruning goes on while the
    // test runs: what is retained is what lies at or after the cursor the new device is told
    // history starts at. bob 6 comes after the join, so something is always retained.
    let joined = pair(&alice, &carol, &conn);
    push(&bob, "bob 6");
    let out = zerok(&carol, &["pull"], b"");
    let (stdout, pulled_err) = text(&out);
    let stderr = joined + &pulled_err;
    assert!(out.status.success(), "pruned history is the operator's choice, not a failure: {stdout}\n{stderr}");
    let earliest: u64 = stderr
        .split("history before cursor ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the new device is told where history starts\n{stderr}"));
    let log = ["alice 1", "bob 1", "alice 2", "bob 2", "alice 3", "bob 3", "bob 4", "alice 4", "bob 5", "bob 6"];
    let retained: Vec<&str> = log.iter().skip(earliest as usize - 1).copied().collect();
    assert!(earliest > 6, "the first six were pruned before the join (earliest {earliest})");
    assert_eq!(pulled(&stdout), retained, "every retained blob once, in order\n{stderr}");
    let senders = ["alice", "bob"].iter().filter(|s| retained.iter().any(|r| r.starts_with(*s))).count();
    assert_eq!(stderr.matches("report: trustPoint:").count(), senders, "one trust point per sender\n{stderr}");

    // A later command, a new process, carries on from the saved state.
    push(&bob, "bob 7");
    let (stdout, _) = ok(zerok(&carol, &["pull", "--after", "0"], b""));
    let mut expected = retained.clone();
    expected.push("bob 7");
    assert_eq!(pulled(&stdout), expected);
    let (stdout, _) = ok(zerok(&carol, &["status"], b""));
    assert!(stdout.starts_with("status Synced"), "{stdout}");
    assert!(stdout.contains("report: trustPoint:"), "status lists the recent reports: {stdout}");
}

/// Copies the relay's database (with its WAL) from `from` to `to`, replacing what is there.
fn copy_db(from: &Path, to: &Path) {
    for name in ["relay.db", "relay.db-wal", "relay.db-shm"] {
        let _ = std::fs::remove_file(to.join(name));
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
}

#[test]
fn a_relay_restored_from_an_older_backup_gets_back_every_blob_its_pushers_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let bind = format!("127.0.0.1:{}", free_udp_port());
    let (relay, conn) = start_relay(&relay_dir, &["--bind", &bind]);
    let (alice, bob, carol) = (dir.path().join("alice"), dir.path().join("bob"), dir.path().join("carol"));
    ok(zerok(&alice, &["init", "--relay", &conn], b""));
    pair(&alice, &bob, &conn);
    push(&alice, "a1");
    push(&alice, "a2");
    push(&bob, "b1");
    drop(relay);
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    copy_db(&relay_dir, &backup);

    let (relay, again) = start_relay(&relay_dir, &["--bind", &bind]);
    assert_eq!(again, conn, "a restart keeps the connection string");
    push(&alice, "a3");
    push(&bob, "b2");
    push(&alice, "a4");
    for d in [&alice, &bob] {
        ok(zerok(d, &["pull"], b""));
    }
    // The operator restores the backup: the relay forgets a3, b2 and a4, which it had
    // acknowledged. Every device restarts (each command is a new process).
    drop(relay);
    copy_db(&backup, &relay_dir);
    let (_relay, _) = start_relay(&relay_dir, &["--bind", &bind]);
    for d in [&alice, &bob] {
        let out = zerok(d, &["pull"], b"");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "the relay lost acknowledged blobs: a failing exit\n{stdout}\n{stderr}");
        assert!(stderr.contains("report: rollback:") || stderr.contains("report: forked:"), "{stderr}");
    }
    // Nothing acknowledged is lost while its pusher exists: a new device gets all six, once.
    pair(&alice, &carol, &conn);
    let (stdout, stderr) = ok(zerok(&carol, &["pull"], b""));
    let mut got = pulled(&stdout);
    got.sort();
    assert_eq!(got, ["a1", "a2", "a3", "a4", "b1", "b2"], "{stderr}");
    // And the old devices hold each blob once, the restored ones included.
    for (d, theirs) in [(&alice, ["b1", "b2"].as_slice()), (&bob, ["a1", "a2", "a3", "a4"].as_slice())] {
        let (stdout, _) = ok(zerok(d, &["pull"], b""));
        let mut got = pulled(&stdout);
        got.sort();
        assert_eq!(got, theirs);
    }
}

/// The relay's blob rows, oldest first: (cursor, envelope length).
fn stored_rows(relay_dir: &Path) -> Vec<(i64, usize)> {
    let db = rusqlite::Connection::open(relay_dir.join("relay.db")).unwrap();
    let mut stmt = db.prepare("SELECT cursor, length(envelope) FROM blobs ORDER BY cursor").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_relay_whose_database_was_damaged_at_rest_heals_and_every_device_gets_every_blob_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let bind = format!("127.0.0.1:{}", free_udp_port());
    let (relay, conn) = start_relay(&relay_dir, &["--bind", &bind]);
    let (alice, bob, carol) = (dir.path().join("alice"), dir.path().join("bob"), dir.path().join("carol"));
    ok(zerok(&alice, &["init", "--relay", &conn], b""));
    pair(&alice, &bob, &conn);
    for p in ["a1", "a2", "a3"] {
        push(&alice, p);
    }
    for p in ["b1", "b2"] {
        push(&bob, p);
    }
    for d in [&alice, &bob] {
        ok(zerok(d, &["pull"], b""));
    }
    drop(relay);
    // At rest: a2's row is deleted (the head stays), and a byte of b1's envelope flips.
    let rows = stored_rows(&relay_dir);
    assert_eq!(rows.len(), 5);
    let db = rusqlite::Connection::open(relay_dir.join("relay.db")).unwrap();
    db.execute("DELETE FROM blobs WHERE cursor = ?1", [rows[1].0]).unwrap();
    let (b1, len) = rows[3];
    let mut envelope: Vec<u8> =
        db.query_row("SELECT envelope FROM blobs WHERE cursor = ?1", [b1], |r| r.get(0)).unwrap();
    envelope[len / 2] ^= 0x20;
    db.execute("UPDATE blobs SET envelope = ?2 WHERE cursor = ?1", rusqlite::params![b1, envelope]).unwrap();
    drop(db);

    let (_relay, _) = start_relay(&relay_dir, &["--bind", &bind]);
    for d in [&alice, &bob] {
        let out = zerok(d, &["pull"], b"");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "the relay lost acknowledged blobs: a failing exit\n{stdout}\n{stderr}");
        assert!(stderr.contains("report: "), "{stderr}");
    }
    push(&alice, "a4");
    pair(&alice, &carol, &conn);
    let (stdout, stderr) = ok(zerok(&carol, &["pull"], b""));
    let mut got = pulled(&stdout);
    got.sort();
    assert_eq!(got, ["a1", "a2", "a3", "a4", "b1", "b2"], "a new device gets every blob once\n{stderr}");
    for (d, theirs) in [(&alice, ["b1", "b2"].as_slice()), (&bob, ["a1", "a2", "a3", "a4"].as_slice())] {
        let (stdout, stderr) = ok(zerok(d, &["pull", "--after", "0"], b""));
        let mut got = pulled(&stdout);
        got.sort();
        assert_eq!(got, theirs, "{stderr}");
    }
}

#[test]
fn a_relay_restored_from_a_backup_older_than_a_pairing_lets_the_paired_device_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let bind = format!("127.0.0.1:{}", free_udp_port());
    let (relay, conn) = start_relay(&relay_dir, &["--bind", &bind]);
    let (alice, bob, carol) = (dir.path().join("alice"), dir.path().join("bob"), dir.path().join("carol"));
    ok(zerok(&alice, &["init", "--relay", &conn], b""));
    push(&alice, "a1");
    drop(relay);
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    copy_db(&relay_dir, &backup);
    let (relay, _) = start_relay(&relay_dir, &["--bind", &bind]);
    // Bob pairs after the backup was taken: the backup does not know his key.
    pair(&alice, &bob, &conn);
    push(&bob, "b1");
    ok(zerok(&alice, &["pull"], b""));
    drop(relay);
    copy_db(&backup, &relay_dir);
    let (_relay, _) = start_relay(&relay_dir, &["--bind", &bind]);
    // Alice, who invited him, registers his key again as she connects.
    let out = zerok(&alice, &["pull"], b"");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "the relay lost history: {stderr}");
    let bob_key = zerok_transport_iroh::DeviceDb::open(&bob.join("device.db"))
        .unwrap()
        .load()
        .unwrap()
        .membership
        .unwrap()
        .access_key
        .public()
        .0;
    let registered = || {
        let db = rusqlite::Connection::open(relay_dir.join("relay.db")).unwrap();
        db.query_row("SELECT COUNT(*) FROM members WHERE access_key = ?1", [bob_key.as_slice()], |r| r.get::<_, i64>(0))
            .unwrap()
            > 0
    };
    for _ in 0..100 {
        if registered() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(registered(), "alice registered bob's key again");
    let out = zerok(&bob, &["pull"], b"");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "bob is let in, and told the relay lost his blob\n{stdout}\n{stderr}");
    assert!(stderr.contains("report: rollback:") || stderr.contains("report: forked:"), "{stderr}");
    pair(&alice, &carol, &conn);
    let (stdout, stderr) = ok(zerok(&carol, &["pull"], b""));
    let mut got = pulled(&stdout);
    got.sort();
    assert_eq!(got, ["a1", "b1"], "bob pushed his blob again: a new device gets both\n{stderr}");
}
