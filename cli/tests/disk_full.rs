//! The relay binary on a disk that fills up (a 40 MiB tmpfs; needs root to mount it, as CI
//! has): it refuses writes and keeps serving reads, says so on `/health`, and resumes when space
//! returns, with nothing a device pushed lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zerok_transport_iroh::{ClientOptions, SyncClient};

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::{free_tcp_port, relay_info, start_relay};

/// A size-limited file system, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, mib: u32) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn health(http_port: u16) -> String {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", http_port)).await else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").await;
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
    answer
}

async fn wait_health(http_port: u16, want: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let answer = health(http_port).await;
        if answer.contains(want) || started.elapsed() > within {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 14: a full disk stopped the relay (every commit error was fatal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(dir.path().join("disk"), 40);
    let http_port = free_tcp_port();
    let http = format!("127.0.0.1:{http_port}");
    let relay_dir = disk.0.join("relay");
    let args = ["--bind", "127.0.0.1:0", "--http", &http, "--min-free-bytes", "0", "--push-per-sec", "100000"];
    let (relay, conn) = start_relay(&relay_dir, &args);
    let info = relay_info(&conn);
    let options = |name: &str| ClientOptions::new(dir.path().join(name), info.clone(), "127.0.0.1:0".parse().unwrap());
    let alice = SyncClient::open(options("alice")).await.unwrap();
    alice.create_group(None, Duration::from_secs(30)).await.unwrap();
    let invite = alice.create_invite(Duration::from_secs(30)).await.unwrap();
    let bob = SyncClient::open(options("bob")).await.unwrap();
    bob.join_invite(&invite.short_code, Duration::from_secs(60)).await.unwrap();
    let first = b"stored before the disk filled".to_vec();
    alice.push(first.clone()).await.unwrap();
    alice.wait_synced(Duration::from_secs(30)).await.unwrap();

    // Leave about 6 MiB, then push twice that.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 33 << 20]).unwrap();
    let blobs: Vec<Vec<u8>> = (0..200u32).map(|i| [i.to_be_bytes().as_slice(), &[7u8; 64 * 1024]].concat()).collect();
    for b in &blobs {
        alice.push(b.clone()).await.unwrap();
    }
    let degraded = wait_health(http_port, "503", Duration::from_secs(60)).await;
    assert!(degraded.contains("503") && degraded.contains("degraded"), "/health reports it: {degraded:?}");
    assert!(relay.0.id() > 0 && std::fs::metadata(format!("/proc/{}", relay.0.id())).is_ok(), "the relay runs on");
    // Reads are served meanwhile: bob catches up on what the relay holds.
    bob.sync_now(Duration::from_secs(30)).await.expect("pulls are served while writes are refused");
    let held = bob.pull(0, 1_000).await.unwrap();
    assert!(held.iter().any(|b| b.payload == first));

    std::fs::remove_file(&filler).unwrap();
    let recovered = wait_health(http_port, "200 OK", Duration::from_secs(30)).await;
    assert!(recovered.contains("200 OK"), "writes resume once space returns: {recovered:?}");
    alice.wait_synced(Duration::from_secs(120)).await.expect("every refused push is stored on a resend");
    bob.wait_synced(Duration::from_secs(60)).await.unwrap();
    let got = bob.pull(0, 1_000).await.unwrap();
    for b in blobs.iter().chain([&first]) {
        assert!(got.iter().any(|g| &g.payload == b), "a blob alice pushed reached bob");
    }
    eprintln!("disk filled: /health {:?}, recovered; bob holds {} blobs", degraded.lines().next(), got.len());
    drop(relay);
}
