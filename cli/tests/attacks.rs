//! Attacks on the real relay binary by a group member (loopback only, bounded in count and
//! time): the relay's memory stays bounded, it keeps running, and a legitimate device on the
//! side is still served. `ZEROK_PULL_FLOOD` sets the number of pulls (20,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::time::Duration;

use zerok_core::noise::Intent;
use zerok_core::wire::{Frame, Pull};
use zerok_transport_iroh::{ClientOptions, DeviceDb, SyncClient};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{endpoint_on, free_tcp_port, relay_info, rss_kib, speak, start_relay};

/// Before the output budget and the one-pull-at-a-time rule, 1,000 pulls that were never read
/// took the relay from 19 MiB to 1,259 MiB (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_floods_pulls_and_never_reads_is_closed_and_costs_bounded_memory() {
    let pulls: usize = std::env::var("ZEROK_PULL_FLOOD").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let (relay, conn) = start_relay(&dir.path().join("relay"), &["--bind", "127.0.0.1:0"]);
    let info = relay_info(&conn);
    let pid = relay.0.id();
    let options = |name: &str| ClientOptions::new(dir.path().join(name), info.clone(), "127.0.0.1:0".parse().unwrap());
    let device = SyncClient::open(options("device")).await.unwrap();
    device.create_group(None, Duration::from_secs(30)).await.unwrap();
    // A log worth reading: every page the attacker asks for is about 1.3 MiB.
    for i in 0..20u8 {
        device.push(vec![i; 64 * 1024]).await.unwrap();
    }
    device.wait_synced(Duration::from_secs(30)).await.unwrap();
    let before = rss_kib(pid);

    // The attacker holds a member's access key (its own device's, say) and speaks the protocol.
    let state = DeviceDb::open(&dir.path().join("device/device.db")).unwrap().load().unwrap();
    let membership = state.membership.unwrap();
    let attacker = endpoint_on("127.0.0.1").await;
    let mut speaker =
        speak(&attacker, &info, &membership.access_key, &membership.group_id, Intent::Member).await.unwrap();
    // Then pulls of the whole log, as fast as it can write them, and not one byte read.
    let mut closed = false;
    for i in 0..pulls {
        speaker.queue(&Frame::Pull(Pull { after: 0, limit: 1_000 }));
        if i % 100 == 99 && !speaker.flush().await {
            closed = true;
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    eprintln!("{pulls} pulls never read: relay closed the attacker: {closed}; relay RSS {before} KiB -> {after} KiB");
    assert!(after < before + 64 * 1024, "relay RSS grew from {before} KiB to {after} KiB");
    assert!(
        relay_alive(pid),
        "the relay keeps running" // and a device on the side is still served:
    );
    device.push(b"after the flood".to_vec()).await.unwrap();
    device.wait_synced(Duration::from_secs(30)).await.expect("a real device is still served");
    let other = SyncClient::open(options("other")).await.unwrap();
    other.create_group(None, Duration::from_secs(30)).await.expect("and a new group can start");
    drop(relay);
}

fn relay_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| !s.contains("State:\tZ"))
}

/// Issue 14: one failed `accept()` (out of file descriptors) ended the HTTP accept loop, and the
/// port refused every connection afterwards while the process lived on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_survives_running_out_of_file_descriptors() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let http_port = free_tcp_port();
    let http = format!("127.0.0.1:{http_port}");
    let (relay, _) = start_relay(&dir.path().join("relay"), &["--bind", "127.0.0.1:0", "--http", &http]);
    let pid = relay.0.id().to_string();
    let limited = std::process::Command::new("prlimit").args(["--pid", &pid, "--nofile=96:96"]).status().unwrap();
    assert!(limited.success(), "prlimit lowers the relay's descriptor limit");
    // Idle connections until the relay cannot accept more.
    let idle: Vec<std::net::TcpStream> =
        (0..200).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", http_port)).ok()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut answer = String::new();
    for _ in 0..50 {
        answer.clear();
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", http_port)) else { continue };
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = stream.write_all(b"GET /health HTTP/1.0\r\n\r\n");
        let _ = stream.read_to_string(&mut answer);
        if answer.contains("200 OK") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answer.contains("200 OK"), "the HTTP port answers again: {answer:?}");
}
