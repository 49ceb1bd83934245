//! The relay as a service: an iroh endpoint accepting device connections, the core relay
//! state machine in one task, and the SQLite store on its own thread with group commit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use iroh::{Endpoint, SecretKey};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use zerok_core::client::RelayInfo;
use zerok_core::io::StoreError;
use zerok_core::io::{ConnId, OpId};
use zerok_core::keys::{NoiseKeypair, NoiseSecret};
use zerok_core::relay::{
    Relay, RelayConfig, RelayEvent, RelayInput, RelayLimits, RelayOutput, RelayStoreOp, RelayStoreResult, Source,
};

use crate::admission::{self, Admission, HostLimits, Ticket};
use crate::http;
use crate::metrics::Metrics;
use crate::store::{self, RelayStore, StoreLocation, StoreOpenError};
use zerok_core::connection;
use zerok_transport_iroh::net::{self, NetError, Write};
use zerok_transport_iroh::sql::recv_batch;
use zerok_transport_iroh::{Clock, os_seed};

/// Most store operations committed in one transaction.
const GROUP_COMMIT: usize = 512;

/// How to run a relay.
#[derive(Clone, Debug)]
pub struct RelayServerConfig {
    /// Where the identity (`relay.key`) and the database (`relay.db`) live.
    pub data_dir: PathBuf,
    /// The UDP address to listen on, for example `127.0.0.1:0` or `0.0.0.0:4433`.
    pub bind: SocketAddr,
    /// Every limit of the relay.
    pub limits: RelayLimits,
    /// Where to serve HTTP (TCP), if anywhere: `/health`, `/metrics`, `/connection` and the
    /// browsers' WebSocket at `/sync`.
    pub http: Option<SocketAddr>,
    /// Where to serve the operator's `/health` and `/metrics` instead (a private address); the
    /// `http` port then serves only `/health`, `/connection` and `/sync`.
    pub metrics_http: Option<SocketAddr>,
    /// What the process bounds beside the core: sockets per source, free space, origins.
    pub host: HostLimits,
    /// Where groups and blobs are kept: SQLite in `data_dir` (the default) or PostgreSQL.
    pub store: StoreLocation,
}

impl RelayServerConfig {
    /// A relay in `data_dir` listening on `bind`, with every default: default limits, no HTTP,
    /// the SQLite store.
    pub fn new(data_dir: impl Into<PathBuf>, bind: SocketAddr) -> Self {
        RelayServerConfig {
            data_dir: data_dir.into(),
            bind,
            limits: RelayLimits::default(),
            http: None,
            metrics_http: None,
            host: HostLimits::default(),
            store: StoreLocation::Sqlite,
        }
    }
}

/// Why the relay could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A file in the data dir.
    #[error("relay data: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened, migrated or loaded.
    #[error(transparent)]
    Store(#[from] StoreOpenError),
    /// The network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A commit failed: the relay stopped rather than acknowledge anything it may not hold.
    #[error("relay storage failed, stopping: {0}")]
    StoreFailed(String),
}

/// A running relay.
pub struct RelayServer {
    info: RelayInfo,
    http: Option<SocketAddr>,
    metrics_http: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    endpoint: Endpoint,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), RelayError>>,
}

enum Ev {
    Accepted {
        conn: ConnId,
        peer: [u8; 32],
        source: Source,
        writer: net::Writer,
    },
    /// The permit holds the bytes' share of the inbound budget until the relay has taken them.
    Received {
        conn: ConnId,
        bytes: Vec<u8>,
        _budget: OwnedSemaphorePermit,
    },
    Closed {
        conn: ConnId,
    },
    StoreDone {
        op: OpId,
        result: RelayStoreResult,
    },
    StoreFailed(String),
    /// A write failed for want of space.
    StorageFull,
    /// The free-space watcher's reading of the data dir's file system.
    FreeBytes(u64),
    /// Another relay over the same database appended to this group (a hint).
    GroupChanged([u8; 32]),
}

impl RelayServer {
    /// Starts a relay: loads (or creates) its identity and database, binds, and serves.
    pub async fn start(config: RelayServerConfig) -> Result<Self, RelayError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let descriptors = admission::raise_descriptor_limit();
        let (iroh_secret, noise_secret) = load_identity(&config.data_dir.join("relay.key"))?;
        let (events, inbox) = mpsc::unbounded_channel();
        let (store, repairs, snapshots) = open_store(&config, events.clone()).await?;
        for (group_id, repair) in repairs {
            let dropped: Vec<String> = repair.dropped.iter().map(u64::to_string).collect();
            tracing::warn!(target: "zerok::relay",
                group = %zerok_core::keys::GroupId::from_bytes(group_id).short_hex(),
                dropped = %dropped.join(","),
                relinked = repair.relinked.len(),
                "the store was damaged at rest: rows its log chain cannot vouch for are dropped and the log is linked again; \
                 devices that read past the damage report a fork, and the pushers of dropped rows push them again"
            );
        }
        let snapshot_count = snapshots.len();
        let endpoint = net::bind(iroh_secret, config.bind, true).await?;
        let endpoint_id = *endpoint.id().as_bytes();
        let noise = NoiseKeypair::from_secret(noise_secret);
        let mut info = RelayInfo { endpoint_id, noise_key: noise.public(), addrs: net::listen_addrs(&endpoint) };
        let clock = Clock::new();
        let mut relay_config = RelayConfig::new(endpoint_id, noise);
        let output_budget = OUTPUT_BUDGET.max(4 * config.limits.max_page_bytes);
        let max_connections = config.limits.max_connections;
        relay_config.limits = config.limits;
        if let StoreLocation::Postgres(url) = &config.store {
            // Other relays may share the database: they hint at their appends, and the core
            // reads groups from the store before admitting devices and polls their heads.
            relay_config.shared_store = true;
            let events = events.clone();
            store::listen(url, move |group| events.send(Ev::GroupChanged(group)).is_ok());
        }
        let relay = Relay::new(relay_config, os_seed()?, clock.now(), snapshots);
        let metrics = Arc::new(Metrics::default());
        let attach = Attach {
            events: events.clone(),
            next: Arc::new(AtomicU64::new(1)),
            inbound: Arc::new(Semaphore::new(INBOUND_BUDGET_KIB)),
            admission: Admission::new(&config.host),
            metrics: metrics.clone(),
        };
        let public = match config.http {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
            None => None,
        };
        if let Some(listener) = &public {
            // Browsers reach the relay here, by WebSocket.
            info.addrs.push(format!("ws://{}{}", listener.local_addr()?, http::SYNC_PATH));
        }
        let site = |serves| http::Site {
            metrics: metrics.clone(),
            connection: connection::format(&info),
            attach: attach.clone(),
            serves,
            allowed_origins: config.host.allowed_origins.clone(),
        };
        let public_serves = if config.metrics_http.is_some() { http::Serves::Public } else { http::Serves::All };
        let http = public.map(|listener| http::start(listener, site(public_serves))).transpose()?;
        let metrics_http = match config.metrics_http {
            Some(addr) => Some(http::start(tokio::net::TcpListener::bind(addr).await?, site(http::Serves::Operator))?),
            None => None,
        };
        if config.store == StoreLocation::Sqlite {
            // The database's disk is this one (PostgreSQL reports a full disk by itself).
            tokio::spawn(watch_free_space(config.data_dir.clone(), events.clone()));
        }
        drop(events);
        tokio::spawn(accept(endpoint.clone(), attach));
        let (stop, stopped) = oneshot::channel();
        let storage = Storage { min_free: config.host.min_free_bytes, full_seen: false };
        let serving = Serving { output_budget, storage, metrics: metrics.clone() };
        let task = tokio::spawn(serve(relay, clock, inbox, store, stopped, serving));
        tracing::info!(target: "zerok::relay",
            addrs = %info.addrs.join(","),
            groups = snapshot_count,
            data_dir = %config.data_dir.display(),
            store = %config.store,
            open_files = descriptors.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
            "relay started"
        );
        if descriptors.is_some_and(|n| n < max_connections as u64 + 64) {
            tracing::warn!(target: "zerok::relay",
                open_files = descriptors.unwrap_or_default(),
                max_connections,
                "the open-file limit is below max_connections: raise it (ulimit -n, LimitNOFILE=) or lower max_connections"
            );
        }
        Ok(RelayServer { info, http, metrics_http, metrics, endpoint, stop: Some(stop), task })
    }

    /// Who the relay is and where: what devices need to reach it.
    pub fn info(&self) -> &RelayInfo {
        &self.info
    }

    /// Where HTTP (health, metrics, the browsers' WebSocket) is served, if anywhere.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The TCP address of the operator's `/health` and `/metrics`, if served apart.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_http
    }

    /// The relay's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs until the relay stops by itself (a storage failure).
    pub async fn wait(&mut self) -> Result<(), RelayError> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }

    /// Stops accepting, lets in-flight commits finish, and closes.
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.task).await.unwrap_or(Ok(()));
        self.endpoint.close().await;
        result
    }
}

/// The identity file: the iroh secret key then the Noise static secret, 64 bytes, created on
/// first start and readable by the owner only.
fn load_identity(path: &Path) -> Result<(SecretKey, NoiseSecret), RelayError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => zeroize::Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut fresh = zeroize::Zeroizing::new(Vec::with_capacity(64));
            fresh.extend_from_slice(&os_seed()?);
            fresh.extend_from_slice(&os_seed()?);
            let tmp = path.with_extension("key.tmp");
            let mut file = zerok_transport_iroh::sql::create_owner_only(&tmp)?;
            std::io::Write::write_all(&mut file, fresh.as_slice())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            fresh
        }
        Err(e) => return Err(e.into()),
    };
    let (Some(iroh), Some(noise)) = (bytes.get(..32), bytes.get(32..64)) else {
        return Err(std::io::Error::other(format!("{} is not a relay identity (64 bytes)", path.display())).into());
    };
    let iroh: [u8; 32] = iroh.try_into().map_err(std::io::Error::other)?;
    let noise: [u8; 32] = noise.try_into().map_err(std::io::Error::other)?;
    Ok((SecretKey::from_bytes(&iroh), NoiseSecret::from_bytes(noise)))
}

type StoreSender = std::sync::mpsc::Sender<(OpId, RelayStoreOp)>;

/// Opens the store, repairs what was damaged at rest, loads the groups and starts the store
/// thread, all off the async runtime (the PostgreSQL client runs one of its own, and is
/// dropped on the store thread).
async fn open_store(
    config: &RelayServerConfig,
    events: mpsc::UnboundedSender<Ev>,
) -> Result<
    (StoreSender, Vec<([u8; 32], zerok_core::relay::ChainRepair)>, Vec<zerok_core::relay::GroupSnapshot>),
    RelayError,
> {
    let (location, data_dir) = (config.store.clone(), config.data_dir.clone());
    let opened = tokio::task::spawn_blocking(move || -> Result<_, StoreOpenError> {
        let mut db = store::open(&location, &data_dir)?;
        let repairs = db.repair_chains()?;
        let snapshots = db.snapshots()?;
        // SQLite's disk is watched (free space, resumed at 16 MiB free); a full PostgreSQL disk
        // fails each write, and devices retry (`Unavailable`, after 30 s).
        let watched = location == StoreLocation::Sqlite;
        Ok((spawn_store(db, events, watched), repairs, snapshots))
    })
    .await
    .map_err(|e| StoreOpenError(format!("the store failed to open: {e}")))??;
    Ok(opened)
}

/// The store thread: executes operations in the order issued, as many per transaction as are
/// waiting, and reports each result after the commit.
fn spawn_store(mut db: Box<dyn RelayStore>, events: mpsc::UnboundedSender<Ev>, watched: bool) -> StoreSender {
    let (tx, rx) = std::sync::mpsc::channel::<(OpId, RelayStoreOp)>();
    std::thread::spawn(move || {
        while let Some(batch) = recv_batch(&rx, GROUP_COMMIT) {
            let (ids, ops): (Vec<OpId>, Vec<RelayStoreOp>) = batch.into_iter().unzip();
            let done = db.execute(&ops);
            if watched && done.results.contains(&RelayStoreResult::Failed(StoreError::Full)) {
                let _ = events.send(Ev::StorageFull);
            }
            for (op, result) in ids.into_iter().zip(done.results) {
                let _ = events.send(Ev::StoreDone { op, result });
            }
            if let Some(why) = done.fatal {
                let _ = events.send(Ev::StoreFailed(why));
                return;
            }
        }
    });
    tx
}

/// How transports hand connections to the relay task: the iroh listener and the WebSocket
/// listener on the HTTP port both use it, so the relay sees one kind of connection.
#[derive(Clone)]
pub(crate) struct Attach {
    events: mpsc::UnboundedSender<Ev>,
    next: Arc<AtomicU64>,
    /// Bytes read from all connections and not yet taken by the relay, in KiB: a reader waits
    /// for room (and so stops reading from its peer) when the relay is behind.
    inbound: Arc<Semaphore>,
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
}

/// Most bytes read and waiting for the relay task, across all connections.
const INBOUND_BUDGET_KIB: usize = 16 * 1024;

impl Attach {
    /// A place for a socket from `ip`, or `None` (counted) when its source or the relay is full.
    pub(crate) fn admit(&self, ip: std::net::IpAddr) -> Option<Ticket> {
        let ticket = self.admission.admit(ip);
        if ticket.is_none() {
            self.metrics.refused_source();
        }
        ticket
    }

    /// A new connection from `peer` (its transport identity; zero when it has none): its id
    /// and the queue of what to write to it. `None` once the relay has stopped.
    pub(crate) fn open(&self, peer: [u8; 32], ticket: &Ticket) -> Option<(ConnId, net::Writes)> {
        let conn = ConnId(self.next.fetch_add(1, Ordering::Relaxed));
        let (writer, writes) = net::write_queue();
        self.events.send(Ev::Accepted { conn, peer, source: ticket.source(), writer }).ok()?;
        Some((conn, writes))
    }

    /// Bytes arrived on `conn` (any chunking); waits while the relay is behind.
    pub(crate) async fn received(&self, conn: ConnId, bytes: Vec<u8>) {
        let kib = u32::try_from(bytes.len().div_ceil(1024).clamp(1, INBOUND_BUDGET_KIB)).unwrap_or(1);
        let Ok(budget) = self.inbound.clone().acquire_many_owned(kib).await else { return };
        let _ = self.events.send(Ev::Received { conn, bytes, _budget: budget });
    }

    /// `conn` is gone.
    pub(crate) fn closed(&self, conn: ConnId) {
        let _ = self.events.send(Ev::Closed { conn });
    }
}

/// Most bytes queued for one connection and not yet taken by its writer (or four pages of
/// `max_page_bytes`, if more): a device that reads is never near it; a peer that keeps asking
/// and never reads is closed when it is reached.
const OUTPUT_BUDGET: usize = 8 << 20;

/// How long an accepted QUIC connection may take to open its stream.
const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn accept(endpoint: Endpoint, attach: Attach) {
    while let Some(incoming) = endpoint.accept().await {
        let ticket = match incoming.remote_addr() {
            iroh::endpoint::IncomingAddr::Ip(addr) => attach.admit(addr.ip()),
            _ => attach.admit(std::net::Ipv6Addr::UNSPECIFIED.into()),
        };
        let Some(ticket) = ticket else {
            incoming.refuse();
            continue;
        };
        let attach = attach.clone();
        tokio::spawn(async move {
            let Ok(Ok(conn)) = tokio::time::timeout(STREAM_WAIT, incoming).await else { return };
            let peer = *conn.remote_id().as_bytes();
            // A connection that never opens its stream holds a slot for nothing: dropped after
            // as long as a handshake may take.
            let Ok(Ok((send, recv))) = tokio::time::timeout(STREAM_WAIT, conn.accept_bi()).await else { return };
            let Some((conn_id, writes)) = attach.open(peer, &ticket) else { return };
            net::pump(conn, send, recv, writes, |bytes| attach.received(conn_id, bytes)).await;
            attach.closed(conn_id);
            drop(ticket);
        });
    }
}

/// How often the data dir's free space is read.
const FREE_SPACE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

async fn watch_free_space(dir: PathBuf, events: mpsc::UnboundedSender<Ev>) {
    loop {
        let reading = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || admission::free_bytes(&dir)
        });
        if let Ok(Some(free)) = reading.await
            && events.send(Ev::FreeBytes(free)).is_err()
        {
            return;
        }
        tokio::time::sleep(FREE_SPACE_EVERY).await;
    }
}

/// After a write failed for want of space, writes resume only once this much is free (or the
/// operator's floor, if higher): a few bytes freed by pruning must not flap the relay.
const FREE_AFTER_FULL: u64 = 16 << 20;

/// Whether storage takes writes.
struct Storage {
    min_free: u64,
    full_seen: bool,
}

impl Storage {
    /// Whether writes are to be refused, given a reading of free space.
    fn refusing(&mut self, free: u64) -> bool {
        let floor = if self.full_seen { self.min_free.max(FREE_AFTER_FULL) } else { self.min_free };
        let refusing = free < floor;
        self.full_seen &= refusing;
        refusing
    }
}

/// What the relay task needs beside the relay.
struct Serving {
    output_budget: usize,
    storage: Storage,
    metrics: Arc<Metrics>,
}

async fn serve(
    mut relay: Relay,
    clock: Clock,
    mut inbox: mpsc::UnboundedReceiver<Ev>,
    store: std::sync::mpsc::Sender<(OpId, RelayStoreOp)>,
    mut stopped: oneshot::Receiver<()>,
    mut serving: Serving,
) -> Result<(), RelayError> {
    let (output_budget, metrics) = (serving.output_budget, serving.metrics.clone());
    let mut writers: HashMap<ConnId, net::Writer> = HashMap::new();
    let mut in_flight = 0usize;
    let mut stopping = false;
    let mut over_budget = Vec::new();
    loop {
        let deadline = loop {
            match relay.poll_output() {
                RelayOutput::Transmit { conn, bytes } => match writers.get(&conn) {
                    Some(w) if w.queued() + bytes.len() > output_budget => {
                        // A peer that does not read what it asks for: closed, not buffered for.
                        if let Some(w) = writers.remove(&conn) {
                            let _ = w.send(Write::Close);
                        }
                        metrics.closed();
                        over_budget.push(conn);
                    }
                    Some(w) => {
                        let _ = w.send(Write::Bytes(bytes));
                    }
                    None => {}
                },
                RelayOutput::Close { conn } => {
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.send(Write::Close);
                    }
                }
                RelayOutput::Store { op, request } => {
                    in_flight += 1;
                    if store.send((op, request)).is_err() {
                        return Err(RelayError::StoreFailed("the store thread is gone".into()));
                    }
                }
                RelayOutput::Event(e) => {
                    metrics.record(&e);
                    log_event(&e);
                }
                RelayOutput::Timeout(deadline) => break deadline,
            }
        };
        if !over_budget.is_empty() {
            for conn in over_budget.drain(..) {
                tracing::debug!(target: "zerok::relay", conn = conn.0, "closed: replies over its output budget unread");
                relay.handle_input(clock.now(), RelayInput::Closed { conn });
            }
            continue;
        }
        if stopping && in_flight == 0 {
            for (_, w) in writers.drain() {
                let _ = w.send(Write::Close);
            }
            return Ok(());
        }
        let sleep = tokio::time::sleep(deadline.map_or(std::time::Duration::from_secs(3600), |d| clock.until(d)));
        let input = tokio::select! {
            _ = &mut stopped, if !stopping => {
                stopping = true;
                // New connections are refused from here on; commits already asked for finish.
                for (_, w) in writers.drain() {
                    let _ = w.send(Write::Close);
                }
                continue;
            }
            ev = inbox.recv() => match ev {
                Some(Ev::Accepted { conn, peer, source, writer }) => {
                    if stopping {
                        let _ = writer.send(Write::Close);
                        continue;
                    }
                    writers.insert(conn, writer);
                    metrics.accepted();
                    RelayInput::Accepted { conn, peer, source }
                }
                Some(Ev::Received { conn, bytes, _budget }) => RelayInput::Received { conn, bytes },
                Some(Ev::Closed { conn }) => {
                    writers.remove(&conn);
                    metrics.closed();
                    RelayInput::Closed { conn }
                }
                Some(Ev::StoreDone { op, result }) => {
                    in_flight = in_flight.saturating_sub(1);
                    RelayInput::StoreDone { op, result }
                }
                Some(Ev::StorageFull) => {
                    serving.storage.full_seen = true;
                    set_refusing_writes(&mut relay, &metrics, true);
                    continue;
                }
                Some(Ev::FreeBytes(free)) => {
                    let refusing = serving.storage.refusing(free);
                    set_refusing_writes(&mut relay, &metrics, refusing);
                    continue;
                }
                Some(Ev::GroupChanged(group)) => RelayInput::GroupChanged { group },
                Some(Ev::StoreFailed(why)) => {
                    tracing::error!(target: "zerok::relay", %why, "storage failed: stopping without acknowledging anything more");
                    return Err(RelayError::StoreFailed(why));
                }
                None => return Ok(()),
            },
            () = sleep => RelayInput::Timeout,
        };
        relay.handle_input(clock.now(), input);
    }
}

/// Tells the relay and the metrics, and logs a change.
fn set_refusing_writes(relay: &mut Relay, metrics: &Metrics, refusing: bool) {
    if relay.refusing_writes() == refusing {
        return;
    }
    relay.set_refusing_writes(refusing);
    metrics.set_refusing_writes(refusing);
    if refusing {
        tracing::error!(target: "zerok::relay",
            "storage is full or below its free-space floor: pushes are refused (devices keep them and retry), reads are served; /health says degraded"
        );
    } else {
        tracing::warn!(target: "zerok::relay", "storage has room again: writes resume");
    }
}

/// One log line per relay event: counts, cursors and sizes, never keys, ids or payload.
fn log_event(e: &RelayEvent) {
    match e {
        RelayEvent::Rejected { conn, reason } => {
            tracing::debug!(target: "zerok::relay", conn = conn.0, ?reason, "connection refused")
        }
        RelayEvent::Authenticated { conn } => {
            tracing::debug!(target: "zerok::relay", conn = conn.0, "device authenticated")
        }
        RelayEvent::GroupCreated => tracing::info!(target: "zerok::relay", "group created"),
        RelayEvent::Stored { cursor, bytes } => tracing::trace!(target: "zerok::relay", cursor, bytes, "blob stored"),
        RelayEvent::StoreFailed => tracing::warn!(target: "zerok::relay", "a store operation failed"),
        RelayEvent::Limited { code } => tracing::debug!(target: "zerok::relay", ?code, "request refused by a limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_below_the_floor_and_after_a_full_disk_until_there_is_room() {
        let mut storage = Storage { min_free: 1 << 20, full_seen: false };
        assert!(!storage.refusing(2 << 20));
        assert!(storage.refusing((1 << 20) - 1), "below the operator's floor");
        assert!(!storage.refusing(1 << 20));
        storage.full_seen = true;
        assert!(storage.refusing(2 << 20), "after a full disk, a little freed space is not enough");
        assert!(!storage.refusing(FREE_AFTER_FULL));
        assert!(!storage.refusing(2 << 20), "the full disk is forgotten once it had room");
        let mut no_floor = Storage { min_free: 0, full_seen: false };
        assert!(!no_floor.refusing(0), "without a floor only a failed write refuses");
    }
}
