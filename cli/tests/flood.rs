//! A burst of bogus handshakes against the real relay binary: every one is answered by a close,
//! the relay's memory stays bounded, and a legitimate device is still served.
//! `ZEROK_FLOOD` sets the number of bogus handshakes (2,000; 10,000 in the documented run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zerok_transport_iroh::{ClientOptions, SyncClient, net, os_seed};

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bogus_handshakes_is_closed_and_a_device_is_still_served() {
    let n: usize = std::env::var("ZEROK_FLOOD").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["relay", "--bind", "127.0.0.1:0", "--handshake-timeout-secs", "2", "--data-dir"])
        .arg(dir.path().join("relay"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let relay = Relay(child);
    // Keep reading: the relay prints more (a QR code) after the connection string.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(s) = line.strip_prefix("connection string: ") {
                let _ = tx.send(s.to_owned());
            }
        }
    });
    let conn = rx.recv_timeout(Duration::from_secs(30)).expect("connection string");
    let info = {
        let rest = conn.strip_prefix("zerok1:").unwrap();
        let (keys, addrs) = rest.split_once('@').unwrap();
        let (id, key) = keys.split_once(':').unwrap();
        let unhex = |h: &str| -> [u8; 32] {
            let v: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()).collect();
            v.try_into().unwrap()
        };
        zerok_core::client::RelayInfo {
            endpoint_id: unhex(id),
            noise_key: zerok_core::keys::NoisePublic(unhex(key)),
            addrs: addrs.split(',').map(str::to_owned).collect(),
        }
    };
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

    let device = SyncClient::open(ClientOptions {
        data_dir: dir.path().join("device"),
        relay: info,
        bind: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    device.create_group(None, Duration::from_secs(30)).await.expect("a real device is still served");
    device.push(b"after the flood".to_vec()).await.unwrap();
    device.wait_synced(Duration::from_secs(30)).await.unwrap();
    drop(relay);
}
