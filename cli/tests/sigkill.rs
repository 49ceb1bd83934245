//! The relay is killed with SIGKILL at random moments while 8 devices push concurrently; it is
//! restarted on the same data dir each time. Afterwards every acknowledged push is present,
//! byte-identical, at the cursor it was acknowledged with, and a reader device receives each
//! blob once with cursors that never repeat. `ZEROK_KILLS` sets the number of kills (50); runs
//! longer than 50 kills push more slowly, so the final catch-up stays about the same size.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::collections::BTreeMap;
use std::time::Duration;

use zerok_core::client::ClientEvent;
use zerok_transport_iroh::{ClientOptions, SyncClient};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{free_udp_port, relay_info, start_relay};

const WAIT: Duration = Duration::from_secs(60);

/// Where the relay's database holds a push (diagnostics; needs the sqlite3 program).
fn stored_at(relay_dir: &std::path::Path, push_id: &[u8; 16]) -> String {
    let hex: String = push_id.iter().map(|b| format!("{b:02x}")).collect();
    let query = format!("SELECT cursor FROM blobs WHERE push_id = x'{hex}'");
    match std::process::Command::new("sqlite3").arg(relay_dir.join("relay.db")).arg(query).output() {
        Ok(out) => format!("{:?}", String::from_utf8_lossy(&out.stdout).trim()),
        Err(_) => "(no sqlite3)".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_push_survives_relay_sigkills() {
    let kills: u32 = std::env::var("ZEROK_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    survives_sigkills(kills, None).await;
}

/// The same on the PostgreSQL store (`ZEROK_TEST_PG`; `ZEROK_PG_KILLS`, 10 by default): the
/// database lives on while the relay dies, and what a commit acknowledged is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_push_survives_relay_sigkills_on_postgres() {
    let Some(pg) = support::TestDatabase::new() else { return };
    let kills: u32 = std::env::var("ZEROK_PG_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    survives_sigkills(kills, Some(&pg.url)).await;
}

async fn survives_sigkills(kills: u32, postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let relay_dir = dir.path().join("relay");
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec!["--bind", bind.as_str()];
    if let Some(url) = postgres {
        args.extend(["--store", url]);
    }
    let (mut relay, conn) = start_relay(&relay_dir, &args);
    let info = relay_info(&conn);
    let open = |name: String| ClientOptions::new(dir.path().join(name), info.clone(), "127.0.0.1:0".parse().unwrap());

    let reader = SyncClient::open(open("reader".into())).await.unwrap();
    reader.create_group(None, WAIT).await.unwrap();
    let mut pushers = Vec::new();
    for i in 0..8 {
        let device = SyncClient::open(open(format!("pusher{i}"))).await.unwrap();
        let invite = reader.create_invite(WAIT).await.unwrap();
        device.join_invite(&invite.short_code, WAIT).await.unwrap();
        pushers.push(std::sync::Arc::new(device));
    }

    // Every pusher pushes unique payloads all along and records what the relay acknowledged:
    // every 20 ms, slower in runs longer than 50 kills so that the log every device must
    // catch up on at the end stays about the same size.
    let push_every = Duration::from_millis(20 * u64::from(kills.div_ceil(50)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, device) in pushers.iter().enumerate() {
        let (device, stop) = (device.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = device.subscribe();
            let mut pushed: BTreeMap<[u8; 16], Vec<u8>> = BTreeMap::new();
            let mut acked: BTreeMap<[u8; 16], u64> = BTreeMap::new();
            // Events other than acks, arrivals and status, by kind: shown if the device gets stuck.
            let mut unusual: BTreeMap<String, u32> = BTreeMap::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let payload = format!("pusher {i} blob {n} {}", "x".repeat((n as usize * 37) % 700)).into_bytes();
                n += 1;
                pushed.insert(device.push(payload.clone()).await.unwrap(), payload);
                tokio::time::sleep(push_every).await;
                while let Ok(e) = events.try_recv() {
                    match e {
                        ClientEvent::PushAcked { push_id, cursor } => {
                            assert!(
                                acked.insert(push_id, cursor).is_none_or(|c| c == cursor),
                                "acked twice, differently"
                            );
                        }
                        ClientEvent::PushQueued { .. } | ClientEvent::Status(_) | ClientEvent::BlobAvailable { .. } => {
                        }
                        other => {
                            *unusual.entry(format!("{other:?}").chars().take(24).collect::<String>()).or_insert(0) += 1
                        }
                    }
                }
            }
            (device, events, pushed, acked, unusual)
        }));
    }

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(300 + rng % 600)).await;
        drop(relay);
        let (next, again) = start_relay(&relay_dir, &args);
        assert_eq!(again, conn, "the relay keeps its identity");
        relay = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    // Every device receives every other device's blobs: a long run leaves a lot to pull.
    let total: usize = results.iter().map(|(_, _, pushed, _, _)| pushed.len()).sum();
    let catch_up = 3 * WAIT + Duration::from_millis(total as u64 * 2);
    for (device, ..) in &results {
        device.command(zerok_core::client::Command::SyncNow).await.unwrap();
    }
    let mut all_pushed = BTreeMap::new();
    let mut all_acked = BTreeMap::new();
    let mut devices = Vec::new();
    for (device, events, pushed, acked, unusual) in results {
        all_pushed.extend(pushed);
        all_acked.extend(acked);
        let id = device.snapshot().await.unwrap().device_id;
        devices.push((device, events, unusual, id));
    }
    let ids: Vec<_> = devices.iter().map(|d| d.3).collect();
    let unusual_of: Vec<_> = devices.iter().map(|d| d.2.clone()).collect();
    let handles: Vec<_> = devices.iter().map(|d| d.0.clone()).collect();
    for (device, mut events, unusual, _) in devices {
        if let Err(e) = device.wait_synced(catch_up).await {
            let mut last = Vec::new();
            loop {
                match events.try_recv() {
                    Ok(e) => last.push(format!("{e:?}").chars().take(90).collect::<String>()),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                        last.push(format!("({n} events missed)"))
                    }
                    Err(_) => break,
                }
            }
            let tail = last.len().saturating_sub(15);
            let snapshot = device.snapshot().await.unwrap();
            // Where the relay acknowledged each blob the device is missing (seq n is the
            // pusher's payload n - 1), and its neighbours.
            let mut missing = Vec::new();
            for (sender, seq) in &snapshot.receiving.missing {
                let pusher = ids.iter().position(|id| id == sender);
                for s in seq.saturating_sub(1)..seq + 2 {
                    let prefix = format!("pusher {} blob {} ", pusher.unwrap_or(99), s.saturating_sub(1));
                    let found = all_pushed.iter().find(|(_, p)| p.starts_with(prefix.as_bytes()));
                    missing.push(format!(
                        "pusher {pusher:?} seq {s}: acked at {:?}, in the relay's database at {}",
                        found.map(|(id, _)| all_acked.get(id)),
                        found
                            .filter(|_| postgres.is_none())
                            .map(|(id, _)| stored_at(&relay_dir, id))
                            .unwrap_or_default()
                    ));
                }
                if let Some(p) = pusher {
                    let snapshot = handles[p].snapshot().await;
                    missing.push(format!("pusher {p}: {snapshot:?}; during the run {:?}", unusual_of[p]));
                }
            }
            panic!(
                "outbox did not drain ({e}); status {:?}; {snapshot:?}; missing {missing:#?}; during the run {unusual:?}; last events {:#?}",
                device.status(),
                &last[tail..]
            );
        }
        while let Ok(e) = events.try_recv() {
            if let ClientEvent::PushAcked { push_id, cursor } = e {
                all_acked.insert(push_id, cursor);
            }
        }
    }
    let got =
        support::pull_at_least(&reader, all_pushed.len(), catch_up).await.expect("the reader receives every push");
    drop(relay);

    assert_eq!(got.len(), all_pushed.len(), "each blob once");
    let mut cursors = std::collections::BTreeSet::new();
    for b in &got {
        assert!(cursors.insert(b.cursor), "cursor {} used twice", b.cursor);
        assert_eq!(all_pushed.get(&b.push_id), Some(&b.payload), "byte-identical");
        if let Some(c) = all_acked.get(&b.push_id) {
            assert_eq!(*c, b.cursor, "stored where it was acknowledged");
        }
    }
    assert!(all_acked.len() as u32 >= kills, "the pushers made progress between kills ({} acked)", all_acked.len());
    eprintln!(
        "{kills} SIGKILLs ({} store): {} pushes, {} acknowledged during the run, all present",
        if postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        all_pushed.len(),
        all_acked.len()
    );
}
