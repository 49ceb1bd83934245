//! Real histories on the real binaries, each command a fresh `zerok` process as a CLI user (or a
//! relaunched app) runs it: a relay with retention on, and devices that join after a prune.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::start_relay;

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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(invite.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines.next().expect("zerok invite prints a short code").unwrap();
        if let Some(code) = line.strip_prefix("short code: ") {
            break code.to_owned();
        }
    };
    let (_, stderr) = ok(zerok(joiner, &["join", "--relay", conn, &code], b""));
    let status = invite.wait().unwrap();
    assert!(status.success(), "zerok invite: {status:?}");
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
    // Both members read everything: the relay prunes it all (every member acknowledged it).
    for d in [&alice, &bob] {
        ok(zerok(d, &["pull"], b""));
    }
    ok(zerok(&alice, &["pull"], b""));
    // Retained: pushed after the prune, by senders whose first blobs are gone.
    push(&bob, "bob 4");
    push(&alice, "alice 4");
    push(&bob, "bob 5");

    // The new device may already read the log while `zerok join` finishes: its reports count too.
    let joined = pair(&alice, &carol, &conn);
    let out = zerok(&carol, &["pull"], b"");
    let (stdout, pulled_err) = text(&out);
    let stderr = joined + &pulled_err;
    assert!(out.status.success(), "pruned history is the operator's choice, not a failure: {stdout}\n{stderr}");
    assert_eq!(pulled(&stdout), ["bob 4", "alice 4", "bob 5"], "every retained blob once, in order\n{stderr}");
    assert!(stderr.contains("report: truncated:"), "{stderr}");
    assert_eq!(stderr.matches("report: trustPoint:").count(), 2, "one trust point per sender\n{stderr}");

    // A later command, a new process, carries on from the saved state.
    push(&bob, "bob 6");
    let (stdout, _) = ok(zerok(&carol, &["pull", "--after", "0"], b""));
    assert_eq!(pulled(&stdout), ["bob 4", "alice 4", "bob 5", "bob 6"]);
    let (stdout, _) = ok(zerok(&carol, &["status"], b""));
    assert!(stdout.starts_with("status Synced"), "{stdout}");
    assert!(stdout.contains("report: trustPoint:"), "status lists the recent reports: {stdout}");
}
