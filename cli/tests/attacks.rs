//! Attacks on the real relay binary by a group member (loopback only, bounded in count and
//! time): the relay's memory stays bounded, it keeps running, and a legitimate device on the
//! side is still served. `ZEROK_PULL_FLOOD` sets the number of pulls (20,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::time::Duration;

use zerok_core::CoreRng;
use zerok_core::noise::{Channel, ClientAuth, IkInitiator, Intent, ik_prologue};
use zerok_core::wire::{Frame, Hello, MAX_RECORD_LEN, Pull, RecordReader, encode_record};
use zerok_transport_iroh::{ClientOptions, DeviceDb, SyncClient, net, os_seed};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{free_tcp_port, relay_info, rss_kib, start_relay};

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
    let attacker = net::bind(net::SecretKey::from_bytes(&os_seed().unwrap()), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let (_conn, mut send, mut recv) = net::dial(&attacker, info.endpoint_id, &info.addrs).await.unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let auth = ClientAuth::new(&membership.group_id, now_ms, Intent::Member);
    let prologue = ik_prologue(attacker.id().as_bytes(), &info.endpoint_id);
    let mut rng = CoreRng::from_seed(os_seed().unwrap());
    let (init, m1) = IkInitiator::start(&mut rng, &membership.access_key, &info.noise_key, &prologue, &auth).unwrap();
    let mut bytes = Vec::new();
    encode_record(&m1, &mut bytes).unwrap();
    send.write_all(&bytes).await.unwrap();
    let mut reader = RecordReader::new(MAX_RECORD_LEN);
    let m2 = loop {
        if let Some(record) = reader.next_record().unwrap() {
            break record;
        }
        let chunk = recv.read_chunk(4096).await.unwrap().expect("the relay answers the handshake");
        reader.push(&chunk);
    };
    let mut channel = Channel::new(init.finish(&m2).unwrap(), &reader.take_buffered());
    let mut out = Vec::new();
    channel.send(&Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }), &mut out).unwrap();
    // Then pulls of the whole log, as fast as it can write them, and not one byte read.
    let mut closed = false;
    for i in 0..pulls {
        channel.send(&Frame::Pull(Pull { after: 0, limit: 1_000 }), &mut out).unwrap();
        if i % 100 == 99 {
            let written = tokio::time::timeout(Duration::from_secs(10), send.write_all(&out)).await;
            out.clear();
            if !matches!(written, Ok(Ok(()))) {
                closed = true;
                break;
            }
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
