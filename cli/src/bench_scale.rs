//! `zerok bench` at scale: many devices pushing at once, and what an idle connection costs a
//! relay running as its own process.

use std::io::BufRead as _;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use zerok_core::client::RelayInfo;
use zerok_transport_iroh::{ClientOptions, SyncClient};

use crate::Failure;

const WAIT: Duration = Duration::from_secs(300);

/// `devices` devices, each the only member of its own group, push `each` blobs of 1 KiB at
/// the same time; pushes per second until every one is acknowledged.
pub async fn concurrent_devices(relay: &RelayInfo, dir: &Path, devices: usize, each: u64) -> Result<f64, Failure> {
    let clients = open_members(relay, dir, devices).await?;
    let started = Instant::now();
    let mut pushing = JoinSet::new();
    for client in clients {
        pushing.spawn(async move {
            for _ in 0..each {
                client.push(vec![0x5a; 1024]).await?;
            }
            client.wait_synced(WAIT).await?;
            client.close(Duration::ZERO).await;
            Ok::<(), Failure>(())
        });
    }
    while let Some(done) = pushing.join_next().await {
        done.map_err(|e| Failure(e.to_string()))??;
    }
    Ok((devices as f64 * each as f64) / started.elapsed().as_secs_f64())
}

/// Starts `zerok relay` as its own process, connects `connections` devices (each in its own
/// group) and leaves them idle: the relay's resident memory before and after, in MiB.
pub async fn idle_connection_rss(dir: &Path, connections: usize) -> Result<(f64, f64), Failure> {
    let (mut relay, info) = spawn_relay(&dir.join("relay"))?;
    let pid = relay.id();
    let measured = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_mib(pid)?;
        let clients = open_members(&info, dir, connections).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_mib(pid)?;
        for client in clients {
            client.close(Duration::ZERO).await;
        }
        Ok::<_, Failure>((before, after))
    }
    .await;
    let _ = relay.kill();
    let _ = relay.wait();
    measured
}

/// Opens `n` devices and creates a group for each, a few at a time; they stay connected.
async fn open_members(relay: &RelayInfo, dir: &Path, n: usize) -> Result<Vec<SyncClient>, Failure> {
    let mut clients = Vec::with_capacity(n);
    let mut opening = JoinSet::new();
    for i in 0..n {
        let options = ClientOptions::new(dir.join(format!("device{i}")), relay.clone(), super::bench::loopback());
        opening.spawn(async move {
            let client = SyncClient::open(options).await?;
            client.create_group(None, WAIT).await?;
            Ok::<SyncClient, Failure>(client)
        });
        if opening.len() >= 32
            && let Some(done) = opening.join_next().await
        {
            clients.push(done.map_err(|e| Failure(e.to_string()))??);
        }
    }
    while let Some(done) = opening.join_next().await {
        clients.push(done.map_err(|e| Failure(e.to_string()))??);
    }
    Ok(clients)
}

/// `zerok relay` on loopback in `dir`, once it has printed its connection string.
fn spawn_relay(dir: &Path) -> Result<(std::process::Child, RelayInfo), Failure> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["relay", "--bind", "127.0.0.1:0", "--log", "error", "--data-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or(Failure::msg("relay without stdout"))?;
    for line in std::io::BufReader::new(stdout).lines() {
        if let Some(text) = line?.strip_prefix("connection string: ") {
            return Ok((child, crate::connection::parse(text).map_err(Failure)?));
        }
    }
    let _ = child.kill();
    Err(Failure::msg("the relay stopped before printing its connection string"))
}

fn rss_mib(pid: u32) -> Result<f64, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or(Failure::msg("no VmRSS in /proc"))?;
    Ok(kib / 1024.0)
}
