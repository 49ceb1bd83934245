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

/// `zerok relay` as its own process on loopback, so its memory and CPU can be measured apart
/// from the devices'. Killed when dropped.
pub struct RelayProcess {
    child: std::process::Child,
    info: RelayInfo,
}

impl RelayProcess {
    /// Starts it in `dir` with the per-key push limits lifted (devices pipeline far above
    /// them here) and the per-address ones too (every device is on 127.0.0.1, each creating its
    /// group), once it has printed its connection string.
    pub fn start(dir: &Path) -> Result<Self, Failure> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["relay", "--bind", "127.0.0.1:0", "--log", "error", "--push-per-sec", "1000000"])
            .args(["--push-burst", "1000000", "--max-connections-per-source", "100000"])
            .args(["--group-create-burst", "100000", "--group-create-source-burst", "100000"])
            .args(["--data-dir"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or(Failure::msg("relay without stdout"))?;
        for line in std::io::BufReader::new(stdout).lines() {
            if let Some(text) = line?.strip_prefix("connection string: ") {
                let info = zerok_transport_iroh::connection::parse(text).map_err(|e| Failure::msg(&e))?;
                return Ok(RelayProcess { child, info });
            }
        }
        let _ = child.kill();
        Err(Failure::msg("the relay stopped before printing its connection string"))
    }

    /// Resident memory, MiB.
    pub fn rss_mib(&self) -> Result<f64, Failure> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or(Failure::msg("no VmRSS in /proc"))?;
        Ok(kib / 1024.0)
    }

    /// CPU time used so far (user and system, all threads), seconds.
    pub fn cpu_secs(&self) -> Result<f64, Failure> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may contain spaces): utime and stime are the
        // 12th and 13th, in clock ticks (100 per second on Linux).
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
        let tick =
            |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or(Failure::msg("unreadable /proc stat"));
        Ok((tick(11)? + tick(12)?) / 100.0)
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `devices` devices, each the only member of its own group, push `each` blobs of 1 KiB at
/// the same time: pushes per second until every one is acknowledged, and the relay's CPU time
/// per push in µs.
pub async fn concurrent_devices(
    relay: &RelayProcess,
    dir: &Path,
    devices: usize,
    each: u64,
) -> Result<(f64, f64), Failure> {
    let clients = open_members(&relay.info, dir, devices).await?;
    let cpu_before = relay.cpu_secs()?;
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
        done.map_err(|e| Failure::msg(&e.to_string()))??;
    }
    let pushes = devices as f64 * each as f64;
    let secs = started.elapsed().as_secs_f64();
    Ok((pushes / secs, (relay.cpu_secs()? - cpu_before) * 1e6 / pushes))
}

/// Connects `connections` devices (each in its own group) and leaves them idle: the relay's
/// resident memory before and after, in MiB.
pub async fn idle_connection_rss(relay: &RelayProcess, dir: &Path, connections: usize) -> Result<(f64, f64), Failure> {
    let before = relay.rss_mib()?;
    let clients = open_members(&relay.info, dir, connections).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = relay.rss_mib()?;
    for client in clients {
        client.close(Duration::ZERO).await;
    }
    Ok((before, after))
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
            clients.push(done.map_err(|e| Failure::msg(&e.to_string()))??);
        }
    }
    while let Some(done) = opening.join_next().await {
        clients.push(done.map_err(|e| Failure::msg(&e.to_string()))??);
    }
    Ok(clients)
}
