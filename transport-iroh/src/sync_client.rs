//! The native client: an async handle over the core client state machine, driving it over iroh
//! and persisting its store effects in the device's SQLite database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use iroh::{Endpoint, SecretKey};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use zerok_core::client::{
    Client, ClientConfig, ClientEvent, ClientInput, ClientOutput, ClientStoreOp, Command, CommandError,
    DisconnectReason, PairingFailure, ReceiveProgress, ReceivedBlob, RelayInfo, SyncStatus,
};
use zerok_core::io::{ConnId, OpId, StoreError};
use zerok_core::keys::DeviceId;

use crate::clock::{Clock, os_seed};
use crate::device_store::DeviceDb;
use crate::net::{self, NetError, Write};
use crate::sql::recv_batch;

/// How to open a device.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Where the device database (`device.db`, keys included) lives.
    pub data_dir: PathBuf,
    /// The relay to create groups on and to pair through.
    pub relay: RelayInfo,
    /// The local UDP address to use, for example `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// How long an invite this device opens stays valid.
    pub invite_ttl: Duration,
}

impl ClientOptions {
    /// A device in `data_dir` syncing through `relay`, bound to `bind`, with invites valid for
    /// ten minutes.
    pub fn new(data_dir: impl Into<PathBuf>, relay: RelayInfo, bind: SocketAddr) -> Self {
        ClientOptions { data_dir: data_dir.into(), relay, bind, invite_ttl: Duration::from_secs(600) }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The device's files.
    #[error("device data: {0}")]
    Io(#[from] std::io::Error),
    /// The device database.
    #[error("device database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The command was refused.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Pairing failed.
    #[error("pairing failed: {0:?}")]
    Pairing(PairingFailure),
    /// Nothing happened in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The client stopped.
    #[error("the sync client has stopped")]
    Stopped,
}

/// An open invite, to show as a QR code and a short code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// `XXXX-XXXX-XXXX-XXXX`, for typing.
    pub short_code: String,
    /// The QR payload (`0KSYNC:…`).
    pub qr_text: String,
    /// When it expires, Unix ms.
    pub expires_at_ms: u64,
}

/// What the device knows about itself right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSnapshot {
    /// The durable cursor: every blob up to it has been received.
    pub cursor: u64,
    /// Whether the device belongs to a sync group (created or joined).
    pub in_group: bool,
    /// Pushes not yet acknowledged by the relay.
    pub unsent: usize,
    /// The device's id, as other devices see it as a blob's sender.
    pub device_id: DeviceId,
    /// Where receiving stands (for diagnostics).
    pub receiving: ReceiveProgress,
}

enum Req {
    Command(Command, oneshot::Sender<Result<Option<[u8; 16]>, CommandError>>),
    Snapshot(oneshot::Sender<DeviceSnapshot>),
}

enum Ev {
    Connected { conn: ConnId, writer: net::Writer },
    Received { conn: ConnId, bytes: Vec<u8> },
    Disconnected { conn: ConnId },
    StoreDone { op: OpId, result: Result<(), StoreError> },
}

enum StoreReq {
    Apply(OpId, ClientStoreOp),
    Inbox { after: u64, limit: usize, reply: oneshot::Sender<rusqlite::Result<Vec<ReceivedBlob>>> },
    Arrivals { after: u64, limit: usize, reply: oneshot::Sender<rusqlite::Result<Vec<(u64, ReceivedBlob)>>> },
}

/// A device syncing through a relay. Cheap to share by reference; every call is non-blocking
/// for the app (pushes land in the durable outbox first).
pub struct SyncClient {
    requests: mpsc::UnboundedSender<Req>,
    store: std::sync::mpsc::Sender<StoreReq>,
    events: broadcast::Sender<ClientEvent>,
    status: watch::Receiver<SyncStatus>,
    endpoint: Endpoint,
    task: tokio::task::JoinHandle<()>,
    /// Connections still running (see [`Pumps`]).
    pumps: watch::Receiver<usize>,
}

/// Counts running connection pumps, so closing waits for what they were given to go out.
#[derive(Clone)]
struct Pumps(std::sync::Arc<watch::Sender<usize>>);

/// One running pump; counted down when it ends.
struct PumpRunning(Pumps);

impl Pumps {
    fn start(&self) -> PumpRunning {
        self.0.send_modify(|n| *n += 1);
        PumpRunning(self.clone())
    }
}

impl Drop for PumpRunning {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Longest a close waits for connections to hand the relay what they were given (a pump waits
/// up to 2 s for the relay to read its stream's end).
const PUMPS_DRAIN: Duration = Duration::from_secs(3);

impl SyncClient {
    /// Opens the device in `options.data_dir` (creating its keys on first use). Sync starts
    /// with [`SyncClient::launch`] or when a group is created or joined.
    pub async fn open(options: ClientOptions) -> Result<Self, ClientError> {
        std::fs::create_dir_all(&options.data_dir)?;
        let mut db = DeviceDb::open(&options.data_dir.join("device.db"))?;
        let device = db.device_key(|| os_seed().map_err(ClientError::from))?;
        let state = db.load()?;
        let endpoint = net::bind(SecretKey::from_bytes(&os_seed()?), options.bind, false).await?;
        let mut config = ClientConfig::new(device, *endpoint.id().as_bytes(), options.relay);
        config.invite_ttl = core_duration(options.invite_ttl);
        let clock = Clock::new();
        let client = Client::new(config, state, os_seed()?, clock.now());
        let (events, _) = broadcast::channel(4096);
        let (status_tx, status) = watch::channel(client.status());
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (net_tx, net_rx) = mpsc::unbounded_channel();
        let store = spawn_store(db, net_tx.clone());
        let (pumps_tx, pumps) = watch::channel(0);
        let driver = Driver {
            pumps: Pumps(std::sync::Arc::new(pumps_tx)),
            client,
            clock,
            endpoint: endpoint.clone(),
            store: store.clone(),
            events: events.clone(),
            status: status_tx,
            net: net_tx,
            writers: HashMap::new(),
        };
        let task = tokio::spawn(driver.run(requests_rx, net_rx));
        Ok(SyncClient { requests, store, events, status, endpoint, task, pumps })
    }

    /// Sends an app command to the core.
    pub async fn command(&self, command: Command) -> Result<Option<[u8; 16]>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Req::Command(command, reply)).map_err(|_| ClientError::Stopped)?;
        Ok(answer.await.map_err(|_| ClientError::Stopped)??)
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.events.subscribe()
    }

    /// The current sync status.
    pub fn status(&self) -> SyncStatus {
        *self.status.borrow()
    }

    /// The app started: connect, push pending blobs, pull.
    pub async fn launch(&self) -> Result<(), ClientError> {
        self.command(Command::Launch).await.map(drop)
    }

    /// The app went to the background: flush pending blobs for at most `flush_for`, then
    /// disconnect. Returns at once.
    pub async fn pause(&self, flush_for: Duration) -> Result<(), ClientError> {
        self.command(Command::Pause { flush_for: core_duration(flush_for) }).await.map(drop)
    }

    /// Seals `data` and queues it durably; returns its blob id at once (it syncs when it can).
    pub async fn push(&self, data: Vec<u8>) -> Result<[u8; 16], ClientError> {
        self.command(Command::Push(data)).await?.ok_or(ClientError::Stopped)
    }

    /// Blobs received from other devices with a cursor above `after`, oldest first.
    pub async fn pull(&self, after: u64, limit: usize) -> Result<Vec<ReceivedBlob>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.store.send(StoreReq::Inbox { after, limit, reply }).map_err(|_| ClientError::Stopped)?;
        Ok(answer.await.map_err(|_| ClientError::Stopped)??)
    }

    /// Blobs received from other devices in the order they arrived, after arrival number
    /// `after` (0: from the first), each with its arrival number: what a live view prints.
    pub async fn arrivals(&self, after: u64, limit: usize) -> Result<Vec<(u64, ReceivedBlob)>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.store.send(StoreReq::Arrivals { after, limit, reply }).map_err(|_| ClientError::Stopped)?;
        Ok(answer.await.map_err(|_| ClientError::Stopped)??)
    }

    /// The durable cursor: every blob up to it has been received.
    pub async fn last_cursor(&self) -> Result<u64, ClientError> {
        Ok(self.snapshot().await?.cursor)
    }

    /// The device's cursor, membership and outbox, as of now.
    pub async fn snapshot(&self) -> Result<DeviceSnapshot, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Req::Snapshot(reply)).map_err(|_| ClientError::Stopped)?;
        answer.await.map_err(|_| ClientError::Stopped)
    }

    /// Pushes `data` (durably queued first, like [`SyncClient::push`]) and waits up to `within`
    /// for the relay's acknowledgement while the device is online. Returns the blob id and its
    /// cursor, or `None` for a push that stays pending (offline, refused, or slower than
    /// `within`): it syncs later by itself.
    pub async fn push_and_wait(&self, data: Vec<u8>, within: Duration) -> Result<([u8; 16], Option<u64>), ClientError> {
        let mut events = self.subscribe();
        let id = self.push(data).await?;
        if !matches!(self.status(), SyncStatus::Synced | SyncStatus::Pending) {
            return Ok((id, None));
        }
        let acked = wait_for(&mut events, within, "the acknowledgement", |e| match e {
            ClientEvent::PushAcked { push_id, cursor } if *push_id == id => Some(Ok(Some(*cursor))),
            ClientEvent::Status(SyncStatus::Offline | SyncStatus::Failed) => Some(Ok(None)),
            _ => None,
        })
        .await;
        match acked {
            Ok(cursor) => Ok((id, cursor)),
            Err(ClientError::Timeout(_)) => Ok((id, None)),
            Err(e) => Err(e),
        }
    }

    /// Creates a group on the relay with this device as its first member, and waits until the
    /// relay has confirmed it.
    pub async fn create_group(&self, admission_token: Option<Vec<u8>>, within: Duration) -> Result<(), ClientError> {
        let mut events = self.subscribe();
        self.command(Command::CreateGroup { admission_token }).await?;
        wait_for(&mut events, within, "the relay to confirm the group", |e| match e {
            ClientEvent::Connected { .. } => Some(Ok(())),
            _ => None,
        })
        .await
    }

    /// Opens an invite for another device and waits until the relay holds its slot.
    pub async fn create_invite(&self, within: Duration) -> Result<Invite, ClientError> {
        self.wait_online(within).await?;
        let mut events = self.subscribe();
        self.command(Command::CreateInvite).await?;
        wait_for(&mut events, within, "the invite", |e| match e {
            ClientEvent::InviteReady { short_code, qr_text, expires_at_ms } => Some(Ok(Invite {
                short_code: short_code.clone(),
                qr_text: qr_text.clone(),
                expires_at_ms: *expires_at_ms,
            })),
            _ => None,
        })
        .await
    }

    /// Joins a group with a short code or QR text; returns the confirmation code both screens
    /// show, once this device is a member.
    pub async fn join_invite(&self, code: &str, within: Duration) -> Result<String, ClientError> {
        let mut events = self.subscribe();
        self.command(Command::JoinInvite(code.to_owned())).await?;
        let mut confirmation = String::new();
        wait_for(&mut events, within, "pairing", |e| match e {
            ClientEvent::PairingConfirmation { code } => {
                confirmation = code.clone();
                None
            }
            ClientEvent::GroupReady => Some(Ok(())),
            ClientEvent::PairingFailed { reason } => Some(Err(ClientError::Pairing(*reason))),
            _ => None,
        })
        .await?;
        Ok(confirmation)
    }

    /// A full cycle, for a "Sync now" button: pushes everything pending and pulls everything
    /// new (connecting first if needed), and waits until a pull has completed and the device is
    /// synced, the relay cannot be reached, or `within` has passed. Returns the status then.
    pub async fn sync_now(&self, within: Duration) -> Result<SyncStatus, ClientError> {
        let mut events = self.subscribe();
        self.command(Command::SyncNow).await?;
        // What the command itself reported came before its reply: the cycle's own pull ends
        // with a later progress report.
        while events.try_recv().is_ok() {}
        let mut pulled = false;
        let outcome = wait_for(&mut events, within, "the sync cycle", |e| {
            pulled |= matches!(e, ClientEvent::SyncProgress { .. });
            match e {
                ClientEvent::Disconnected { reason } if *reason != DisconnectReason::Local => Some(Ok(())),
                _ if pulled && self.status() == SyncStatus::Synced => Some(Ok(())),
                _ => None,
            }
        })
        .await;
        match outcome {
            Ok(()) | Err(ClientError::Timeout(_)) => Ok(self.status()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the status is `Synced`.
    pub async fn wait_synced(&self, within: Duration) -> Result<(), ClientError> {
        self.wait_status(within, "sync", |s| s == SyncStatus::Synced).await
    }

    async fn wait_online(&self, within: Duration) -> Result<(), ClientError> {
        self.wait_status(within, "a relay connection", |s| matches!(s, SyncStatus::Synced | SyncStatus::Pending)).await
    }

    async fn wait_status(
        &self,
        within: Duration,
        what: &'static str,
        done: impl Fn(SyncStatus) -> bool,
    ) -> Result<(), ClientError> {
        let mut status = self.status.clone();
        tokio::time::timeout(within, status.wait_for(|s| done(*s)))
            .await
            .map_err(|_| ClientError::Timeout(what))?
            .map_err(|_| ClientError::Stopped)?;
        Ok(())
    }

    /// The app is closing: try to flush pending blobs for at most `flush_for`, then stop. Every
    /// later call fails with [`ClientError::Stopped`]; the outbox stays on disk for the next open.
    pub async fn close(&self, flush_for: Duration) {
        let flush = core_duration(flush_for);
        let mut status = self.status.clone();
        if self.command(Command::Close { flush_for: flush }).await.is_ok() {
            let _ = tokio::time::timeout(flush_for, status.wait_for(|s| *s != SyncStatus::Pending)).await;
        }
        self.task.abort();
        // What the core already handed a connection (a pairing's group welcome, the last
        // acknowledgements) still goes out: with the driver gone, each pump writes its queue,
        // ends its stream and waits briefly for the relay to read it. Closing the endpoint at
        // once threw that away, and a joiner lost its welcome now and then.
        let mut pumps = self.pumps.clone();
        let _ = tokio::time::timeout(PUMPS_DRAIN, pumps.wait_for(|n| *n == 0)).await;
        self.endpoint.close().await;
    }
}

fn core_duration(d: Duration) -> zerok_core::Duration {
    zerok_core::Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn wait_for<T>(
    events: &mut broadcast::Receiver<ClientEvent>,
    within: Duration,
    what: &'static str,
    mut matches: impl FnMut(&ClientEvent) -> Option<Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return Err(ClientError::Timeout(what)),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => return Err(ClientError::Stopped),
            Ok(Ok(e)) => {
                if let Some(done) = matches(&e) {
                    return done;
                }
            }
        }
    }
}

/// Most store operations committed in one transaction.
const GROUP_COMMIT: usize = 256;

/// The store thread: applies operations in the order issued, as many per transaction as are
/// waiting (one fsync for a burst of pushes), and reports each after the commit. A read sees
/// every operation issued before it.
fn spawn_store(mut db: DeviceDb, events: mpsc::UnboundedSender<Ev>) -> std::sync::mpsc::Sender<StoreReq> {
    let (tx, rx) = std::sync::mpsc::channel::<StoreReq>();
    std::thread::spawn(move || {
        let mut writes = Vec::new();
        while let Some(batch) = recv_batch(&rx, GROUP_COMMIT) {
            for req in batch {
                match req {
                    StoreReq::Apply(op, request) => writes.push((op, request)),
                    StoreReq::Inbox { after, limit, reply } => {
                        commit(&mut db, &mut writes, &events);
                        let _ = reply.send(db.inbox(after, limit));
                    }
                    StoreReq::Arrivals { after, limit, reply } => {
                        commit(&mut db, &mut writes, &events);
                        let _ = reply.send(db.arrivals(after, limit));
                    }
                }
            }
            commit(&mut db, &mut writes, &events);
        }
    });
    tx
}

fn commit(db: &mut DeviceDb, writes: &mut Vec<(OpId, ClientStoreOp)>, events: &mpsc::UnboundedSender<Ev>) {
    if writes.is_empty() {
        return;
    }
    let (ids, ops): (Vec<OpId>, Vec<ClientStoreOp>) = writes.drain(..).unzip();
    for (op, result) in ids.into_iter().zip(db.apply_all(&ops)) {
        let _ = events.send(Ev::StoreDone { op, result });
    }
}

struct Driver {
    client: Client,
    clock: Clock,
    endpoint: Endpoint,
    store: std::sync::mpsc::Sender<StoreReq>,
    events: broadcast::Sender<ClientEvent>,
    status: watch::Sender<SyncStatus>,
    net: mpsc::UnboundedSender<Ev>,
    writers: HashMap<ConnId, net::Writer>,
    pumps: Pumps,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Req>, mut net: mpsc::UnboundedReceiver<Ev>) {
        loop {
            let deadline = self.drain();
            let sleep = tokio::time::sleep(deadline.map_or(Duration::from_secs(3600), |d| self.clock.until(d)));
            tokio::select! {
                req = requests.recv() => match req {
                    Some(Req::Command(command, reply)) => {
                        let result = self.client.command(self.clock.now(), command);
                        // Carry out what the command caused (status included) before the app
                        // hears back, so `status()` after `push()` already says pending.
                        self.drain();
                        let _ = reply.send(result);
                    }
                    Some(Req::Snapshot(reply)) => {
                        let _ = reply.send(DeviceSnapshot {
                            cursor: self.client.cursor(),
                            in_group: self.client.membership().is_some(),
                            unsent: self.client.unsent(),
                            device_id: self.client.device_id(),
                            receiving: self.client.receive_progress(),
                        });
                    }
                    None => return,
                },
                ev = net.recv() => {
                    let Some(ev) = ev else { return };
                    let input = match ev {
                        Ev::Connected { conn, writer } => {
                            self.writers.insert(conn, writer);
                            ClientInput::Connected { conn }
                        }
                        Ev::Received { conn, bytes } => ClientInput::Received { conn, bytes },
                        Ev::Disconnected { conn } => {
                            self.writers.remove(&conn);
                            ClientInput::Disconnected { conn }
                        }
                        Ev::StoreDone { op, result } => ClientInput::StoreDone { op, result },
                    };
                    self.client.handle_input(self.clock.now(), input);
                }
                () = sleep => self.client.handle_input(self.clock.now(), ClientInput::Timeout),
            }
        }
    }

    /// Carries out everything the core asked for; returns its next deadline.
    fn drain(&mut self) -> Option<zerok_core::Instant> {
        loop {
            match self.client.poll_output() {
                ClientOutput::Connect { conn, relay } => self.connect(conn, relay),
                ClientOutput::Transmit { conn, bytes } => {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(Write::Bytes(bytes));
                    }
                }
                ClientOutput::Close { conn } => {
                    if let Some(w) = self.writers.remove(&conn) {
                        let _ = w.send(Write::Close);
                    }
                }
                ClientOutput::Store { op, request } => {
                    if self.store.send(StoreReq::Apply(op, request)).is_err() {
                        let _ = self.net.send(Ev::StoreDone { op, result: Err(StoreError::Io) });
                    }
                }
                ClientOutput::Event(e) => {
                    if let ClientEvent::Status(s) = &e {
                        let _ = self.status.send(*s);
                    }
                    let _ = self.events.send(e);
                }
                ClientOutput::Timeout(deadline) => return deadline,
            }
        }
    }

    fn connect(&self, conn: ConnId, relay: RelayInfo) {
        let (endpoint, events) = (self.endpoint.clone(), self.net.clone());
        let running = self.pumps.start();
        tokio::spawn(async move {
            let _running = running;
            let Ok((connection, send, recv)) = net::dial(&endpoint, relay.endpoint_id, &relay.addrs).await else {
                let _ = events.send(Ev::Disconnected { conn });
                return;
            };
            let (writer, writes) = net::write_queue();
            if events.send(Ev::Connected { conn, writer }).is_err() {
                return;
            }
            let reads = events.clone();
            net::pump(connection, send, recv, writes, move |bytes| {
                let _ = reads.send(Ev::Received { conn, bytes });
                std::future::ready(())
            })
            .await;
            let _ = events.send(Ev::Disconnected { conn });
        });
    }
}
