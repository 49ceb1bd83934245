//! `zerok bench`: end-to-end figures on loopback, each next to the limit it is bounded by,
//! measured in the same run: raw iroh bi-stream throughput, push throughput by blob size, pull
//! throughput, push→notify latency at a second device, and connect + handshake time.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use zerok_core::client::{ClientEvent, Command};
use zerok_core::relay::RelayLimits;
use zerok_relay::{RelayServer, RelayServerConfig, RelayStore, SqliteStore, StoreLocation};
use zerok_transport_iroh::net;
use zerok_transport_iroh::{ClientOptions, SyncClient, os_seed};

use crate::Failure;

const WAIT: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(only_push: Option<(usize, u64)>) -> Result<(), Failure> {
    let raw = raw_iroh_mib_s(256).await?;
    println!("raw iroh bi-stream, 256 MiB in 64 KiB writes: {raw:.0} MiB/s  (the limit)");

    let dir = tempfile::tempdir()?;
    let disk = disk_mib_s(&dir.path().join("disk-probe"), 256)?;
    println!(
        "disk: 256 MiB in 1 MiB writes, each followed by fdatasync: {disk:.0} MiB/s  (the limit for durable pushes: a blob is written to the WAL and checkpointed at the device and at the relay, about 4x its size)"
    );
    let (relay, alice) = relay_and_pusher(dir.path(), StoreLocation::Sqlite).await?;
    let open = |name: &str| ClientOptions::new(dir.path().join(name), relay.info().clone(), loopback());

    let mut pushed = 0u64;
    if let Some((size, count)) = only_push {
        let secs = push_many(&alice, size, count).await?;
        let mib_s = (size as f64 * count as f64) / MIB / secs;
        println!("push {size} B x {count}, one pipelined device: {:.0} pushes/s {mib_s:.1} MiB/s", count as f64 / secs);
        return Ok(());
    }
    for (size, count) in [(1024usize, 5_000u64), (64 * 1024, 1_000), (1024 * 1024, 64)] {
        let secs = push_many(&alice, size, count).await?;
        pushed += count;
        let mib_s = (size as f64 * count as f64) / MIB / secs;
        println!(
            "push {:>7} B x {count:>5}, one pipelined device: {:>8.0} pushes/s {:>7.1} MiB/s  ({:.2}x raw iroh, {:.2}x disk/4)",
            size,
            count as f64 / secs,
            mib_s,
            mib_s / raw,
            mib_s / (disk / 4.0)
        );
    }

    let bob = SyncClient::open(open("bob")).await?;
    bob.launch().await?;
    bob.wait_synced(WAIT).await?;
    let (p50, p99) = notify_latency(&alice, &bob, 200).await?;
    println!("push -> blob-available at a second device, 200 x 1 KiB: p50 {p50:.2} ms, p99 {p99:.2} ms");

    let carol = SyncClient::open(open("carol")).await?;
    let invite = alice.create_invite(WAIT).await?;
    let started = Instant::now();
    carol.join_invite(&invite.short_code, WAIT).await?;
    let bytes = pull_all(&carol, pushed).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "pull: a new device pairs and receives {pushed} blobs ({:.0} MiB) in {secs:.2} s: {:.0} blobs/s, {:.1} MiB/s ({:.2}x raw iroh)",
        bytes / MIB,
        pushed as f64 / secs,
        bytes / MIB / secs,
        bytes / MIB / secs / raw
    );

    let connect = connect_times(&open("dave"), &relay, 20).await?;
    println!("connect + Noise IK + hello/welcome, fresh connection, median of 20: {connect:.2} ms");

    for c in [alice, bob, carol] {
        c.close(Duration::from_millis(200)).await;
    }
    relay.shutdown().await?;
    start_check(&dir.path().join("relay/relay.db"), disk)?;

    // A relay of its own, as an operator runs it, to measure its CPU and memory apart.
    let relay = crate::bench_scale::RelayProcess::start(&dir.path().join("relay-process"))?;
    let (devices, each) = (100, 200);
    let (rate, relay_us) =
        crate::bench_scale::concurrent_devices(&relay, &dir.path().join("many"), devices, each).await?;
    println!(
        "push 1 KiB x {each} from each of {devices} devices at once (one group each): {rate:.0} pushes/s; the relay process used {relay_us:.0} us of CPU per push ({:.0} pushes/s per relay core)",
        1e6 / relay_us
    );
    let connections = 1_000;
    let (before, after) =
        crate::bench_scale::idle_connection_rss(&relay, &dir.path().join("idle"), connections).await?;
    println!(
        "relay process RSS: {before:.1} MiB, {after:.1} MiB with {connections} more idle devices connected: {:.1} KiB per connection",
        (after - before) * 1024.0 / connections as f64
    );
    Ok(())
}

/// A relay on `store` in `dir` and a device in a group of two (the other device closed: the
/// pushes are measured with no other device online; in real life the receivers run on their
/// own machines, here they would take the pusher's cores).
async fn relay_and_pusher(dir: &std::path::Path, store: StoreLocation) -> Result<(RelayServer, SyncClient), Failure> {
    let relay = RelayServer::start(RelayServerConfig {
        // One device pipelines far above the default per-key rate limit (500 pushes/s), and
        // the late joiner must find the whole history.
        limits: RelayLimits {
            push_burst: 1_000_000,
            push_per_sec: 1_000_000,
            retention_all_acked: false,
            ..RelayLimits::default()
        },
        store,
        ..RelayServerConfig::new(dir.join("relay"), loopback())
    })
    .await?;
    let open = |name: &str| ClientOptions::new(dir.join(name), relay.info().clone(), loopback());
    let alice = SyncClient::open(open("alice")).await?;
    let bob = SyncClient::open(open("bob")).await?;
    alice.create_group(None, WAIT).await?;
    let invite = alice.create_invite(WAIT).await?;
    bob.join_invite(&invite.short_code, WAIT).await?;
    bob.wait_synced(WAIT).await?;
    bob.close(Duration::ZERO).await;
    Ok((relay, alice))
}

/// `zerok bench --store URL`: the push figures of one relay on SQLite and on the PostgreSQL at
/// `url`, in the same run, with their ratio (the fresh schema of each run is the caller's).
pub async fn compare_stores(url: &str) -> Result<(), Failure> {
    let mut rates: Vec<Vec<f64>> = Vec::new();
    for store in [StoreLocation::Sqlite, url.parse()?] {
        let dir = tempfile::tempdir()?;
        let name = store.to_string();
        let (relay, alice) = relay_and_pusher(dir.path(), store).await?;
        let mut figures = Vec::new();
        for (size, count) in [(1024usize, 5_000u64), (1024 * 1024, 32)] {
            let secs = push_many(&alice, size, count).await?;
            let (per_s, mib_s) = (count as f64 / secs, size as f64 * count as f64 / MIB / secs);
            println!(
                "{name}: push {size:>7} B x {count:>5}, one pipelined device: {per_s:>7.0} pushes/s {mib_s:>6.1} MiB/s"
            );
            figures.push(per_s);
        }
        alice.close(Duration::from_millis(200)).await;
        relay.shutdown().await?;
        rates.push(figures);
    }
    if let [sqlite, postgres] = &rates[..] {
        for ((what, sqlite), postgres) in ["1 KiB", "1 MiB"].iter().zip(sqlite).zip(postgres) {
            println!("PostgreSQL / SQLite, {what} pushes: {:.2}x", postgres / sqlite);
        }
    }
    Ok(())
}

/// What a relay's start costs for the log chain check of its store (every stored blob read
/// and hashed once), against the disk figure.
fn start_check(db: &std::path::Path, disk: f64) -> Result<(), Failure> {
    let started = Instant::now();
    let mut db = SqliteStore::open(db)?;
    let repairs = db.repair_chains()?;
    let secs = started.elapsed().as_secs_f64();
    let (blobs, bytes) = db.snapshots()?.iter().fold((0, 0), |(n, b), g| (n + g.blobs, b + g.bytes));
    let mib = bytes as f64 / MIB;
    println!(
        "relay start: the log chain check read {blobs} blobs ({mib:.0} MiB) in {:.0} ms: {:.0} MiB/s ({:.2}x the disk figure); {} repairs",
        secs * 1e3,
        mib / secs,
        mib / secs / disk,
        repairs.len()
    );
    Ok(())
}

/// `SIZExCOUNT`, for `--push`.
pub fn parse_push(text: &str) -> Result<(usize, u64), String> {
    let bad = || format!("expected SIZExCOUNT such as 1024x50000, got {text:?}");
    let (size, count) = text.split_once('x').ok_or_else(bad)?;
    let size: usize = size.parse().map_err(|_| bad())?;
    if size == 0 || size > zerok_core::envelope::MAX_PAYLOAD {
        return Err(format!("SIZE must be 1 to {} bytes", zerok_core::envelope::MAX_PAYLOAD));
    }
    Ok((size, count.parse().map_err(|_| bad())?))
}

pub fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Writes `mib` MiB to `path` in 1 MiB writes, each made durable; MiB/s.
fn disk_mib_s(path: &std::path::Path, mib: usize) -> Result<f64, Failure> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0xa5u8; 1024 * 1024];
    let started = Instant::now();
    for _ in 0..mib {
        file.write_all(&chunk)?;
        file.sync_data()?;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(mib as f64 / secs)
}

/// Sends `mib` MiB over one bi-stream between two loopback endpoints; MiB/s until the
/// receiver has read it all.
async fn raw_iroh_mib_s(mib: usize) -> Result<f64, Failure> {
    let server = net::bind(net::SecretKey::from_bytes(&os_seed()?), loopback(), true).await?;
    let client = net::bind(net::SecretKey::from_bytes(&os_seed()?), loopback(), false).await?;
    let total = mib * 1024 * 1024;
    let accept = server.clone();
    let receiver = tokio::spawn(async move {
        let conn = accept.accept().await?.await.ok()?;
        let (_send, mut recv) = conn.accept_bi().await.ok()?;
        let mut got = 0usize;
        while let Ok(Some(chunk)) = recv.read_chunk(1 << 20).await {
            got += chunk.len();
        }
        Some((got, Instant::now()))
    });
    let (conn, mut send, _recv) = net::dial(&client, *server.id().as_bytes(), &net::listen_addrs(&server))
        .await
        .map_err(|e| Failure::msg(&format!("raw iroh dial: {e}")))?;
    let chunk = vec![7u8; 64 * 1024];
    let started = Instant::now();
    for _ in 0..total / chunk.len() {
        send.write_all(&chunk).await.map_err(|e| Failure::msg(&e.to_string()))?;
    }
    send.finish().map_err(|e| Failure::msg(&e.to_string()))?;
    let (got, done) = receiver.await.ok().flatten().ok_or(Failure::msg("raw iroh receiver failed"))?;
    conn.close(0u32.into(), b"done");
    client.close().await;
    server.close().await;
    if got != total {
        return Err(Failure::msg(&format!("raw iroh: received {got} of {total} bytes")));
    }
    Ok(mib as f64 / done.duration_since(started).as_secs_f64())
}

/// Pushes `count` blobs of `size` bytes as fast as the app can; seconds until all are acknowledged.
async fn push_many(client: &SyncClient, size: usize, count: u64) -> Result<f64, Failure> {
    let payload = vec![0x5au8; size];
    let started = Instant::now();
    for _ in 0..count {
        client.push(payload.clone()).await?;
    }
    client.wait_synced(WAIT).await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn notify_latency(from: &SyncClient, to: &SyncClient, samples: usize) -> Result<(f64, f64), Failure> {
    let mut events = to.subscribe();
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let id = from.push(vec![1u8; 1024]).await?;
        loop {
            match tokio::time::timeout(WAIT, events.recv()).await {
                Ok(Ok(ClientEvent::BlobAvailable { push_id, .. })) if push_id == id => break,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                _ => return Err(Failure::msg("a blob never arrived")),
            }
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
    Ok((at(0.5), at(0.99)))
}

async fn pull_all(client: &SyncClient, count: u64) -> Result<f64, Failure> {
    let deadline = Instant::now() + WAIT;
    loop {
        let cursor = client.last_cursor().await?;
        if cursor >= count {
            let blobs = client.pull(0, usize::MAX >> 1).await?;
            return Ok(blobs.iter().map(|b| b.payload.len() as f64).sum());
        }
        if Instant::now() > deadline {
            return Err(Failure::msg(&format!("pulled up to cursor {cursor} of {count}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Median time from `Launch` to the relay's welcome, each time on a fresh device process state.
async fn connect_times(options: &ClientOptions, relay: &RelayServer, runs: usize) -> Result<f64, Failure> {
    let creator = SyncClient::open(options.clone()).await?;
    creator.create_group(None, WAIT).await?;
    creator.close(Duration::ZERO).await;
    let _ = relay;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let client = SyncClient::open(options.clone()).await?;
        let mut events = client.subscribe();
        let started = Instant::now();
        client.command(Command::Launch).await?;
        loop {
            match tokio::time::timeout(WAIT, events.recv()).await {
                Ok(Ok(ClientEvent::Connected { .. })) => break,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                _ => return Err(Failure::msg("never connected")),
            }
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        client.close(Duration::ZERO).await;
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms.get(ms.len() / 2).copied().unwrap_or(0.0))
}
