//! A burst of bogus handshakes against the real relay binary: every one is answered by a close,
//! the relay's memory stays bounded, and a legitimate device is still served.
//! `ZEROK_FLOOD` sets the number of bogus handshakes (2,000; 10,000 in the documented run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::time::Duration;

use zerok_transport_iroh::{ClientOptions, SyncClient, net, os_seed};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{relay_info, rss_kib, start_relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bogus_handshakes_is_closed_and_a_device_is_still_served() {
    let n: usize = std::env::var("ZEROK_FLOOD").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let (relay, conn) =
        start_relay(&dir.path().join("relay"), &["--bind", "127.0.0.1:0", "--handshake-timeout-secs", "2"]);
    let info = relay_info(&conn);
    let pid = relay.0.id();
    let before = rss_kib(pid);

    let attacker = net::bind(net::SecretKey::from_bytes(&os_seed().unwrap()), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let mut closed = 0usize;
    for batch in 0..n.div_ceil(100) {
        let mut tasks = Vec::new();
        for i in 0..100.min(n - batch * 100) {
            let (attacker, info) = (attacker.clone(), info.clone());
            tasks.push(tokio::spawn(async move {
                let Ok((_conn, mut send, mut recv)) = net::dial(&attacker, info.endpoint_id, &info.addrs).await else {
                    return false;
                };
                // Bytes shaped like an IK first message (length prefix, 96 bytes) that do not decrypt.
                let mut bogus = vec![0, 96];
                bogus.extend((0..96).map(|k| (k * 7 + i) as u8));
                let _ = send.write_all(&bogus).await;
                tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 16)).await.is_ok()
            }));
        }
        for t in tasks {
            closed += usize::from(t.await.unwrap());
        }
    }
    let after = rss_kib(pid);
    eprintln!("{n} bogus handshakes: {closed} closed by the relay; relay RSS {before} KiB -> {after} KiB");
    assert_eq!(closed, n, "every bogus handshake is answered by a close");
    assert!(after < before + 64 * 1024, "relay RSS grew from {before} KiB to {after} KiB");

    let device = SyncClient::open(ClientOptions::new(dir.path().join("device"), info, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    device.create_group(None, Duration::from_secs(30)).await.expect("a real device is still served");
    device.push(b"after the flood".to_vec()).await.unwrap();
    device.wait_synced(Duration::from_secs(30)).await.unwrap();
    drop(relay);
}
