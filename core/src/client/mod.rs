//! The client state machine: one per device. It connects to the group's relay (Noise IK),
//! keeps a durable outbox of sealed blobs, pulls and applies other devices' blobs under the
//! receive rules, pairs devices, and reports a sync status. Sans-IO: the driver feeds
//! [`ClientInput`]s and app [`Command`]s, then drains [`Client::poll_output`] until
//! [`ClientOutput::Timeout`].
//!
//! ```no_run
//! # use zerok_core::client::*; use zerok_core::*;
//! # fn wait(_: Option<Instant>) -> ClientInput { unimplemented!() }
//! # fn now() -> Now { unimplemented!() }
//! # let config: ClientConfig = unimplemented!();
//! let mut client = Client::new(config, ClientState::default(), [7; 32], now());
//! client.command(now(), Command::Launch).ok();
//! loop {
//!     let deadline = loop {
//!         match client.poll_output() {
//!             ClientOutput::Connect { .. } | ClientOutput::Transmit { .. } | ClientOutput::Close { .. } => {}
//!             ClientOutput::Store { .. } => { /* persist atomically, then feed StoreDone */ }
//!             ClientOutput::Event(_) => { /* tell the app */ }
//!             ClientOutput::Timeout(deadline) => break deadline,
//!         }
//!     };
//!     let input = wait(deadline);
//!     client.handle_input(now(), input);
//! }
//! ```

mod backoff;
mod conn;
pub mod kv;
mod liveness;
mod logview;
mod names;
mod pairing;
mod receive;
mod state;
mod status;
mod sync;

pub use backoff::Backoff;
pub use state::{
    ClientState, ClientStoreOp, GivenUp, Membership, OutboxEntry, PendingCreation, ReceivedBlob, RelayInfo, SenderView,
    StoreResult,
};
pub use status::SyncStatus;

use std::collections::{BTreeMap, VecDeque};

use crate::CoreRng;
use crate::envelope::BlobCipher;
use crate::io::{ConnId, OpId, StoreError};
use crate::keys::{DeviceId, DeviceSigningKey};
use crate::time::{Duration, Instant, Now};
use crate::wire::ErrorCode;
use conn::Phase;
use logview::LogView;
use pairing::Pairing;
use receive::Receiver;
use status::StatusInputs;

/// Device identity and tuning.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The device's blob-signing key (its identity in every group).
    pub device: DeviceSigningKey,
    /// This device's transport endpoint id (bound into IK prologues).
    pub endpoint_id: [u8; 32],
    /// The relay to create groups on and to join short codes through.
    pub relay: RelayInfo,
    /// Reconnect backoff: first delay.
    pub backoff_base: Duration,
    /// Reconnect backoff: longest delay.
    pub backoff_max: Duration,
    /// A connection attempt or handshake taking longer than this is abandoned.
    pub connect_timeout: Duration,
    /// A request (push, pull, ping) unanswered this long (plus time to upload the oldest push
    /// in flight) means the connection is dead.
    pub response_timeout: Duration,
    /// A connection quiet this long is pinged.
    pub ping_interval: Duration,
    /// Most pushes awaiting acknowledgement on a connection.
    pub push_window: usize,
    /// Most envelope bytes awaiting acknowledgement on a connection (one push is always let
    /// through).
    pub push_window_bytes: usize,
    /// Blobs asked for per pull.
    pub pull_page: u32,
    /// Most blobs sealed into one outbox write.
    pub seal_batch: usize,
    /// Gap buffer: most blobs held.
    pub gap_blobs: usize,
    /// Gap buffer: most payload bytes held.
    pub gap_bytes: usize,
    /// How long invites stay valid.
    pub invite_ttl: Duration,
    /// How long a device that has read the whole log waits for a sender's missing blob (for
    /// the sender to push it again) before it gives up on it and applies that sender's later
    /// blobs ([`ClientEvent::BlobsLost`]).
    pub gap_patience: Duration,
    /// Deliberate bugs, for proving the simulator's checks.
    #[cfg(feature = "planted-bugs")]
    pub bugs: crate::bugs::PlantedBugs,
}

impl ClientConfig {
    /// Defaults for a device with this key and relay.
    pub fn new(device: DeviceSigningKey, endpoint_id: [u8; 32], relay: RelayInfo) -> Self {
        ClientConfig {
            device,
            endpoint_id,
            relay,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            push_window: 1024,
            push_window_bytes: 8 * 1024 * 1024,
            pull_page: 256,
            seal_batch: 256,
            gap_blobs: 1024,
            gap_bytes: 16 * 1024 * 1024,
            invite_ttl: Duration::from_secs(600),
            gap_patience: Duration::from_secs(3600),
            #[cfg(feature = "planted-bugs")]
            bugs: Default::default(),
        }
    }
}

/// What an app asks of the client. Misuse returns an error at once; everything else reports
/// back through events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start syncing (connect when there is a group).
    Enable,
    /// Stop syncing and close the connection. Nothing local is dropped.
    Disable,
    /// Create a new group on the configured relay, with this device as its first member.
    CreateGroup {
        /// The relay's admission token, if it requires one.
        admission_token: Option<Vec<u8>>,
    },
    /// Open an invite: register a relay slot and wait for a joiner ([`ClientEvent::InviteReady`]).
    CreateInvite,
    /// Cancel the open invite.
    CancelInvite,
    /// Join a group with a short code or QR invite text.
    JoinInvite(String),
    /// Seal and queue a blob. Works offline: it lands in the durable outbox.
    Push(Vec<u8>),
    /// Push everything pending and pull everything new, reporting progress.
    SyncNow,
    /// The app started: connect, push pending, pull.
    Launch,
    /// The app came to the foreground: push pending, pull.
    Resume,
    /// The app went to the background: try to flush for at most `flush_for`, then disconnect.
    Pause {
        /// Flush budget (e.g. 500 ms).
        flush_for: Duration,
    },
    /// The app is closing: same as pause.
    Close {
        /// Flush budget.
        flush_for: Duration,
    },
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The device is not in a group yet.
    #[error("this device is not in a sync group yet")]
    NotInGroup,
    /// The device already is in a group.
    #[error("this device already belongs to a sync group")]
    AlreadyInGroup,
    /// The blob exceeds the size limit.
    #[error("blob of {0} bytes exceeds the 1 MiB limit")]
    TooLarge(usize),
    /// The invite could not be read.
    #[error("invite: {0}")]
    Invite(#[from] crate::invite::InviteError),
    /// A pairing is already running.
    #[error("a pairing is already in progress")]
    PairingBusy,
    /// Needs a connection to the relay.
    #[error("not connected to the relay")]
    NotConnected,
}

/// Something that happened to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientInput {
    /// The connection asked for with [`ClientOutput::Connect`] is up.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes arrived (any chunking).
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The connection failed or closed.
    Disconnected {
        /// The connection.
        conn: ConnId,
    },
    /// A deadline passed.
    Timeout,
    /// A store operation finished.
    StoreDone {
        /// The operation.
        op: OpId,
        /// Its result: on error nothing was written.
        result: StoreResult,
    },
}

/// What the client wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Open a connection to the relay and report [`ClientInput::Connected`] or
    /// [`ClientInput::Disconnected`].
    Connect {
        /// The id to use for it.
        conn: ConnId,
        /// Where to connect.
        relay: RelayInfo,
    },
    /// Send bytes.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close a connection (after the bytes already queued).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Persist atomically and report [`ClientInput::StoreDone`].
    Store {
        /// Its id.
        op: OpId,
        /// What to persist.
        request: ClientStoreOp,
    },
    /// Tell the app.
    Event(ClientEvent),
    /// Nothing more until this deadline or the next input.
    Timeout(Option<Instant>),
}

/// Why the connection went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The relay could not be reached.
    Unreachable,
    /// The relay refused the handshake.
    Refused,
    /// The connection dropped or the relay sent something invalid.
    Lost,
    /// The app disabled sync or went to the background.
    Local,
}

/// Events for the app (and the simulator's checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The sync indicator changed.
    Status(SyncStatus),
    /// Connected and authenticated; the relay's head cursor.
    Connected {
        /// The group's head at the relay.
        head: u64,
    },
    /// The connection is gone.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// Group membership is durable (after creating or joining).
    GroupReady,
    /// A push is durable at the relay.
    PushAcked {
        /// Its id.
        push_id: [u8; 16],
        /// Its cursor.
        cursor: u64,
    },
    /// These pushes are durably queued: they will reach the relay, whatever happens to the app.
    PushQueued {
        /// Their ids.
        push_ids: Vec<[u8; 16]>,
    },
    /// A push could not be saved locally (nothing was queued).
    PushFailed {
        /// Its id.
        push_id: [u8; 16],
        /// Why.
        error: StoreError,
    },
    /// A blob from another device was applied and stored for the app.
    BlobAvailable {
        /// Its cursor.
        cursor: u64,
        /// Its id.
        push_id: [u8; 16],
        /// Its sender.
        sender: DeviceId,
    },
    /// History before `earliest` was deleted at the relay before this device saw it.
    Truncated {
        /// The oldest cursor still at the relay.
        earliest: u64,
    },
    /// History was pruned before this device read it: this sender's chain starts here, and
    /// its blobs before `seq` are not available to this device.
    TrustPoint {
        /// The sender.
        sender: DeviceId,
        /// The first of its blobs this device applies.
        seq: u64,
        /// Where that blob is stored.
        cursor: u64,
    },
    /// The relay no longer holds this device's acknowledged blob at `cursor`, or serves it
    /// altered: it is pushed again (the same envelope; other devices accept it as the same
    /// blob).
    LostAtRelay {
        /// The blob's push id.
        push_id: [u8; 16],
        /// The cursor it was acknowledged at.
        cursor: u64,
    },
    /// The relay refused a request.
    RelayError {
        /// The coarse reason.
        code: ErrorCode,
    },
    /// Progress of a sync cycle.
    SyncProgress {
        /// Blobs still to push.
        unsent: usize,
        /// Durable cursor.
        cursor: u64,
        /// Relay head.
        head: u64,
    },
    /// A sender signed two different blobs for one sequence number, or broke its chain.
    Equivocation {
        /// The sender.
        sender: DeviceId,
        /// The sequence number.
        seq: u64,
        /// Where the offending blob was stored.
        cursor: u64,
        /// Proof: the two conflicting hashes (known, received).
        proof: ([u8; 32], [u8; 32]),
    },
    /// A blob failed to open: tampered, spliced from another group, or garbage.
    Tampered {
        /// Its cursor.
        cursor: u64,
    },
    /// The relay's head went backwards: it lost or hid history.
    Rollback {
        /// The head it reports now.
        head: u64,
        /// The highest head seen before.
        highest_seen: u64,
    },
    /// The relay stated a history that does not extend the one it showed this device before
    /// (a fork into two worlds, or a rollback hidden behind newer blobs). The device reads the
    /// relay's log again from the start and pushes its own acknowledged blobs again.
    Forked {
        /// This device's fetch position.
        cursor: u64,
        /// Proof: this device's chain value there, and the one the relay stated.
        proof: ([u8; 32], [u8; 32]),
    },
    /// A sender's blobs did not arrive within [`ClientConfig::gap_patience`] of reading the
    /// whole log: they are given up, and the sender's later blobs apply from `to_seq + 1`. A
    /// given-up blob that arrives later (its sender pushed it again) is still applied, in order.
    BlobsLost {
        /// The sender.
        sender: DeviceId,
        /// The first sequence number given up.
        from_seq: u64,
        /// The last.
        to_seq: u64,
    },
    /// A sender's blob is missing although the relay's head has passed it.
    Withheld {
        /// The sender.
        sender: DeviceId,
        /// The first missing sequence number.
        missing_seq: u64,
    },
    /// The relay served inconsistent data (a cursor out of order, or another blob where this
    /// device's own acknowledged push should be).
    RelayMisbehaved {
        /// The cursor concerned.
        cursor: u64,
    },
    /// An invite is open: show the short code and QR.
    InviteReady {
        /// `XXXX-XXXX-XXXX-XXXX`.
        short_code: String,
        /// The QR invite text.
        qr_text: String,
        /// When it expires, Unix ms.
        expires_at_ms: u64,
    },
    /// Both screens should show this code.
    PairingConfirmation {
        /// Six digits.
        code: String,
    },
    /// The inviter admitted a new device.
    DeviceAdded {
        /// The new device.
        device: DeviceId,
    },
    /// A pairing attempt failed (wrong code, expired or used invite, relay refused).
    PairingFailed {
        /// What went wrong.
        reason: PairingFailure,
    },
    /// The open invite is closed (used, expired, cancelled or out of attempts).
    InviteClosed,
}

/// Why pairing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairingFailure {
    /// The code was wrong, or the handshake failed. For a short code this also means the
    /// invite expired, was used or ran out of attempts: the relay answers a code it holds no
    /// invite for as a live invite with another code would (docs/SECURITY.md, slot scanning).
    WrongCode,
    /// The invite is expired, used, or out of attempts (known for a QR code, which carries
    /// its expiry and the inviter's key), or the relay refused the lookup.
    InviteUnavailable,
    /// The relay could not be reached or refused the connection.
    RelayUnavailable,
    /// Storage failed.
    Storage,
}

enum OpKind {
    SaveMembership { membership: Box<Membership>, joined: bool },
    SaveIntroduced { membership: Box<Membership>, access_key: [u8; 32] },
    AppendOutbox { entries: Vec<OutboxEntry>, prev_seq: u64, prev_hash: [u8; 32], pushed: Vec<[u8; 16]> },
    MarkSent,
    Requeue,
    ForgetSent,
    Deliver { cursor: u64, log_chain: Option<[u8; 32]>, blobs: Vec<ReceivedBlob> },
}

/// Where receiving stands (see [`Client::receive_progress`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveProgress {
    /// The durable cursor.
    pub cursor: u64,
    /// The cursor after which the next page is fetched.
    pub fetch_pos: u64,
    /// The relay's head as last heard.
    pub head: u64,
    /// The highest head the relay ever showed (or acknowledged a push at).
    pub highest_head: u64,
    /// Connected to the relay as a member.
    pub online: bool,
    /// A pull is in progress.
    pub pulling: bool,
    /// A page is being saved.
    pub delivering: bool,
    /// Blobs held in the gap buffer, waiting for an earlier blob of their sender.
    pub gap_buffered: usize,
    /// The first missing sequence number of each sender with buffered blobs.
    pub missing: Vec<(DeviceId, u64)>,
}

/// The client state machine of one device.
pub struct Client {
    config: ClientConfig,
    rng: CoreRng,
    now: Now,
    membership: Option<Membership>,
    cipher: Option<BlobCipher>,
    enabled: bool,
    paused: bool,
    phase: Phase,
    next_conn: u64,
    backoff: Backoff,
    last_handshake_ms: u64,
    failed: bool,
    retry_at: Option<Instant>,
    flush_deadline: Option<Instant>,
    // push side
    next_seq: u64,
    last_hash: [u8; 32],
    outbox: VecDeque<OutboxEntry>,
    sealing: VecDeque<([u8; 16], Vec<u8>)>,
    /// Entries sealed and being written to the outbox.
    appending: usize,
    /// How many outbox entries, from the front, were sent on this connection and await an ack.
    in_flight: usize,
    /// Their envelope bytes.
    in_flight_bytes: usize,
    /// The push window now: `push_window`, halved when the relay refuses pushes for their
    /// rate, widened by one per acknowledgement.
    push_window_now: usize,
    /// The relay refused a request: nothing more is pushed until the retry.
    push_hold: bool,
    /// No page has checked the relay's log statement since this connection's Welcome or the
    /// last rewind: the device is not synced until one has.
    unchecked: bool,
    /// The lowest cursor of a blob the full gap buffer dropped, to be read again.
    dropped_from: Option<u64>,
    /// A blob applied, or a gap given up, since the first blob of `dropped_from` was dropped.
    progress_since_drop: bool,
    /// Introduced access keys registered again on this connection, not yet answered.
    reregistering: std::collections::BTreeSet<[u8; 32]>,
    /// When the relay was last heard from on this connection.
    heard: Instant,
    /// Since when an answer has been expected with nothing heard.
    waiting_since: Option<Instant>,
    /// The ping awaiting its pong.
    ping_nonce: Option<u64>,
    /// Acknowledged pushes (and their cursors) not yet marked sent in the store.
    acked: Vec<([u8; 16], u64)>,
    /// A `MarkSent` is being written.
    marking: bool,
    /// This device's acknowledged blobs by cursor (the durable sent log), to check what the
    /// relay serves and to push again what it lost or altered. Kept until the relay prunes
    /// past them.
    own_sent: BTreeMap<u64, OutboxEntry>,
    /// Own pushes found in the log of the page being read, acknowledged by it: saved with its
    /// `Deliver`.
    page_sent: Vec<([u8; 16], u64)>,
    /// Blobs the self-audit pushed again, with the cursor they were missing at.
    healing: BTreeMap<[u8; 16], u64>,
    #[cfg(feature = "planted-bugs")]
    sent_once: std::collections::BTreeSet<[u8; 16]>,
    // pull side
    cursor: u64,
    fetch_pos: u64,
    head: u64,
    highest_head: u64,
    log: LogView,
    /// A page broke the log chain: pull again only after the retry delay.
    page_rejected: bool,
    /// The last blob that failed the chain check, by cursor and hash of how it was served.
    rejected: Option<(u64, [u8; 32])>,
    pulling: bool,
    delivering: bool,
    receiver: Receiver,
    withheld_reported: bool,
    /// When the gaps still open at the head are given up ([`ClientConfig::gap_patience`]).
    give_up_at: Option<Instant>,
    /// The patience ran out while a page was in progress: give up at the head.
    gap_overdue: bool,
    // pairing
    pairing: Option<Pairing>,
    saving_membership: bool,
    // plumbing
    status: Option<SyncStatus>,
    ops: BTreeMap<OpId, OpKind>,
    next_op: u64,
    out: VecDeque<ClientOutput>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("device", &self.config.device.device_id())
            .field("cursor", &self.cursor)
            .field("outbox", &self.outbox.len())
            .field("status", &self.status)
            .field("enabled", &self.enabled)
            .field("paused", &self.paused)
            .field("phase", &self.phase.name())
            .field("timeout", &self.poll_timeout())
            .field("fetch_pos", &self.fetch_pos)
            .field("head", &self.head)
            .field("pulling", &self.pulling)
            .field("delivering", &self.delivering)
            .field("gap", &self.receiver.buffered())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client over the durable `state` the driver loaded. `seed`: 32 bytes of real entropy.
    pub fn new(config: ClientConfig, state: ClientState, seed: [u8; 32], now: Now) -> Self {
        let cipher = state.membership.as_ref().map(|m| BlobCipher::new(&m.group_id, m.epoch, &m.epoch_secret));
        #[allow(unused_mut, reason = "mutated only with planted bugs")]
        let mut receiver = Receiver::new(&state.senders, state.trust_floor, config.gap_blobs, config.gap_bytes);
        #[cfg(feature = "planted-bugs")]
        {
            receiver.accept_gaps = config.bugs.accept_seq_gap;
            receiver.no_trust_points = config.bugs.no_trust_points;
        }
        let backoff = Backoff::new(config.backoff_base, config.backoff_max);
        Client {
            rng: CoreRng::from_seed(seed),
            now,
            membership: state.membership,
            cipher,
            enabled: false,
            paused: false,
            phase: Phase::Idle,
            next_conn: 1,
            backoff,
            last_handshake_ms: 0,
            failed: false,
            retry_at: None,
            flush_deadline: None,
            next_seq: state.next_seq.max(1),
            last_hash: state.last_hash,
            outbox: state.outbox.into(),
            sealing: VecDeque::new(),
            appending: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            push_window_now: config.push_window,
            push_hold: false,
            unchecked: true,
            dropped_from: None,
            progress_since_drop: false,
            reregistering: Default::default(),
            heard: now.mono,
            waiting_since: None,
            ping_nonce: None,
            acked: Vec::new(),
            marking: false,
            own_sent: state.sent,
            healing: BTreeMap::new(),
            page_sent: Vec::new(),
            #[cfg(feature = "planted-bugs")]
            sent_once: std::collections::BTreeSet::new(),
            cursor: state.cursor,
            fetch_pos: state.cursor,
            head: state.cursor,
            highest_head: state.highest_head,
            log: LogView::new(state.log_chain),
            page_rejected: false,
            rejected: None,
            pulling: false,
            delivering: false,
            receiver,
            withheld_reported: false,
            give_up_at: None,
            gap_overdue: false,
            pairing: None,
            saving_membership: false,
            status: None,
            ops: BTreeMap::new(),
            next_op: 0,
            out: VecDeque::new(),
            config,
        }
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Now, input: ClientInput) {
        self.now = now;
        match input {
            ClientInput::Connected { conn } => self.on_connected(conn),
            ClientInput::Received { conn, bytes } => self.on_bytes(conn, &bytes),
            ClientInput::Disconnected { conn } => self.on_disconnected(conn),
            ClientInput::Timeout => self.on_timeout(),
            ClientInput::StoreDone { op, result } => self.on_store_done(op, result),
        }
        self.update_status();
    }

    /// Runs an app command. Returns the push id for [`Command::Push`].
    pub fn command(&mut self, now: Now, command: Command) -> Result<Option<[u8; 16]>, CommandError> {
        self.now = now;
        let result = self.run_command(command);
        self.update_status();
        result
    }

    /// The next thing to do; [`ClientOutput::Timeout`] when idle until a deadline.
    #[must_use]
    pub fn poll_output(&mut self) -> ClientOutput {
        self.out.pop_front().unwrap_or_else(|| ClientOutput::Timeout(self.poll_timeout()))
    }

    /// The current sync status.
    pub fn status(&self) -> SyncStatus {
        self.status_inputs().status()
    }

    /// The durable cursor: every blob up to it is applied.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Blobs sealed but not yet acknowledged (including those being saved).
    pub fn unsent(&self) -> usize {
        self.outbox.len() + self.appending + self.sealing.len()
    }

    /// Blobs held in the gap buffer.
    pub fn gap_buffered(&self) -> usize {
        self.receiver.buffered()
    }

    /// Where receiving stands, for support and diagnostics: why a device is behind.
    pub fn receive_progress(&self) -> ReceiveProgress {
        ReceiveProgress {
            cursor: self.cursor,
            fetch_pos: self.fetch_pos,
            head: self.head,
            highest_head: self.highest_head,
            online: self.phase.is_online(),
            pulling: self.pulling,
            delivering: self.delivering,
            gap_buffered: self.receiver.buffered(),
            missing: self.receiver.missing(),
        }
    }

    /// The group membership, if any.
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// Whether the app paused sync (backgrounded) and has not resumed it.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// An invite is open or a join is running.
    pub fn pairing_in_progress(&self) -> bool {
        self.pairing.is_some()
    }

    /// This device's identity.
    pub fn device_id(&self) -> DeviceId {
        self.config.device.device_id()
    }

    /// The earliest deadline, with its reason folded into the state machine.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.phase.deadline(),
            self.retry_at,
            self.flush_deadline,
            self.pairing.as_ref().and_then(Pairing::deadline),
            self.liveness_deadline(),
            self.give_up_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_command(&mut self, command: Command) -> Result<Option<[u8; 16]>, CommandError> {
        match command {
            Command::Enable | Command::Launch => {
                self.enabled = true;
                self.paused = false;
                self.flush_deadline = None;
                self.connect_now();
            }
            Command::Disable => {
                self.enabled = false;
                self.drop_connection(DisconnectReason::Local);
                self.phase = Phase::Idle;
            }
            Command::Resume => {
                self.paused = false;
                self.flush_deadline = None;
                self.sync_cycle();
            }
            Command::SyncNow => self.sync_cycle(),
            Command::Pause { flush_for } | Command::Close { flush_for } => self.pause(flush_for),
            Command::Push(data) => return self.push(data).map(Some),
            Command::CreateGroup { admission_token } => self.create_group(admission_token)?,
            Command::CreateInvite => self.create_invite()?,
            Command::CancelInvite => self.cancel_invite(),
            Command::JoinInvite(text) => self.join_invite(&text)?,
        }
        Ok(None)
    }

    fn sync_cycle(&mut self) {
        self.push_hold = false;
        if self.phase.is_online() {
            self.resend_registrations();
            self.transmit_outbox();
            self.pull_now();
            self.progress();
        } else {
            self.connect_now();
        }
    }

    fn pause(&mut self, flush_for: Duration) {
        self.paused = true;
        if self.phase.is_online() && self.unsent() > 0 {
            self.transmit_outbox();
            self.flush_deadline = Some(self.now.mono + flush_for);
        } else {
            self.flush_deadline = None;
            self.drop_connection(DisconnectReason::Local);
            self.phase = Phase::Idle;
        }
    }

    fn on_timeout(&mut self) {
        let now = self.now.mono;
        if self.flush_deadline.is_some_and(|d| d <= now) {
            self.flush_deadline = None;
            self.drop_connection(DisconnectReason::Local);
            self.phase = Phase::Idle;
        }
        if self.retry_at.is_some_and(|d| d <= now) {
            self.retry_at = None;
            self.sync_cycle();
        }
        if self.give_up_at.is_some_and(|d| d <= now) {
            self.gap_patience_over();
        }
        self.phase_timeout();
        self.liveness_timeout();
        self.pairing_timeout();
    }

    fn store(&mut self, request: ClientStoreOp, kind: OpKind) {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.ops.insert(op, kind);
        self.out.push_back(ClientOutput::Store { op, request });
    }

    fn event(&mut self, e: ClientEvent) {
        self.out.push_back(ClientOutput::Event(e));
    }

    fn status_inputs(&self) -> StatusInputs {
        StatusInputs {
            active: self.enabled && self.membership.is_some(),
            paused: self.paused,
            online: self.phase.is_online(),
            failed: self.failed,
            unsent: self.unsent() > 0,
            // Not synced until a page checked the relay's log since connecting (or rewinding):
            // one may reveal a rewritten history.
            behind: self.cursor < self.head || self.delivering || (self.unchecked && !self.synced_before_checked()),
        }
    }

    #[cfg(feature = "planted-bugs")]
    fn synced_before_checked(&self) -> bool {
        self.config.bugs.synced_before_checked
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn synced_before_checked(&self) -> bool {
        false
    }

    fn update_status(&mut self) {
        let now = self.status();
        if self.status != Some(now) {
            self.status = Some(now);
            self.event(ClientEvent::Status(now));
        }
    }

    fn progress(&mut self) {
        let e = ClientEvent::SyncProgress { unsent: self.unsent(), cursor: self.cursor, head: self.head };
        self.event(e);
    }

    fn on_store_done(&mut self, op: OpId, result: StoreResult) {
        let Some(kind) = self.ops.remove(&op) else {
            return;
        };
        match kind {
            OpKind::SaveMembership { membership, joined } => self.membership_saved(*membership, joined, result),
            OpKind::SaveIntroduced { membership, access_key } => self.introduced_saved(*membership, access_key, result),
            OpKind::AppendOutbox { entries, prev_seq, prev_hash, pushed } => {
                self.outbox_appended(entries, prev_seq, prev_hash, pushed, result)
            }
            OpKind::Requeue | OpKind::ForgetSent => {}
            OpKind::MarkSent => {
                // On failure the entries stay unacknowledged in the store: marked again by the
                // `Deliver` of the page that reads them, or pushed again after a restart and
                // answered as duplicates.
                self.marking = false;
                self.flush_sent();
            }
            OpKind::Deliver { cursor, log_chain, blobs } => self.delivered(cursor, log_chain, blobs, result),
        }
    }
}

#[cfg(test)]
mod tests;
