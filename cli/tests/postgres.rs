//! The relay on its PostgreSQL store, against a real server (`ZEROK_TEST_PG`, and
//! `ZEROK_TEST_PGDATA` to restart it; `scripts/test-pg.sh` starts one). The database restarts
//! twice, as a crash (`immediate`) and as a clean stop (`fast`), while a device pushes: the
//! relay reconnects by itself, and nothing acknowledged is lost. Alone in its test binary: it
//! restarts the server every PostgreSQL test shares.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zerok_core::client::ClientEvent;
use zerok_transport_iroh::{ClientOptions, SyncClient};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{TestDatabase, relay_info, start_relay};

const WAIT: Duration = Duration::from_secs(60);

fn restart_database(data: &str, mode: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/test-pg.sh");
    let out = std::process::Command::new("bash").args([script, "restart", data, mode]).output().unwrap();
    assert!(out.status.success(), "pg_ctl restart: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restarted_during_pushes_loses_nothing_and_the_relay_recovers_by_itself() {
    let Some(pg) = TestDatabase::new() else { return };
    let data = std::env::var("ZEROK_TEST_PGDATA").expect("ZEROK_TEST_PGDATA: the test server's data dir");
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, conn) = start_relay(&dir.path().join("relay"), &["--bind", "127.0.0.1:0", "--store", &pg.url]);
    let info = relay_info(&conn);
    let open = |name: &str| ClientOptions::new(dir.path().join(name), info.clone(), "127.0.0.1:0".parse().unwrap());
    let alice = SyncClient::open(open("alice")).await.unwrap();
    alice.create_group(None, WAIT).await.unwrap();
    let bob = SyncClient::open(open("bob")).await.unwrap();
    let invite = alice.create_invite(WAIT).await.unwrap();
    bob.join_invite(&invite.short_code, WAIT).await.unwrap();

    let mut events = alice.subscribe();
    let mut pushed = BTreeMap::new();
    let started = Instant::now();
    let mut restarts = vec![(Duration::from_millis(400), "immediate"), (Duration::from_millis(1_500), "fast")];
    for n in 0..80u32 {
        let payload = format!("blob {n}").into_bytes();
        pushed.insert(alice.push(payload.clone()).await.unwrap(), payload);
        if restarts.first().is_some_and(|(at, _)| started.elapsed() >= *at) {
            let (_, mode) = restarts.remove(0);
            restart_database(&data, mode);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(restarts.is_empty(), "both restarts happened during the pushes");
    alice.wait_synced(WAIT).await.expect("every push acknowledged after the restarts");
    let mut acked = BTreeMap::new();
    while let Ok(e) = events.try_recv() {
        if let ClientEvent::PushAcked { push_id, cursor } = e {
            acked.insert(push_id, cursor);
        }
    }
    let got = support::pull_at_least(&bob, pushed.len(), WAIT).await.expect("the other device receives every push");
    assert_eq!(got.len(), pushed.len(), "each blob once");
    for b in &got {
        assert_eq!(pushed.get(&b.push_id), Some(&b.payload));
        if let Some(c) = acked.get(&b.push_id) {
            assert_eq!(*c, b.cursor, "stored where it was acknowledged");
        }
    }
    assert!(relay.0.try_wait().unwrap().is_none(), "the relay never stopped");
    eprintln!("2 database restarts during 80 pushes: all acknowledged, all received once, the relay kept running");
}
