//! The relay state machine: accepts device connections (Noise IK responder), stores
//! ciphertext through store effects, assigns cursors, answers pulls, fans out notifications and
//! runs the pairing mailbox. Sans-IO: bytes, timer ticks and store completions in; bytes, store
//! operations, events and deadlines out.
//!
//! Drive it like this, after every input: call [`Relay::poll_output`] until it returns
//! [`RelayOutput::Timeout`], then wait for the next input or that deadline.
//!
//! ```no_run
//! # use zerok_core::relay::*; use zerok_core::*;
//! # fn wait(_: Option<Instant>) -> RelayInput { unimplemented!() }
//! # fn now() -> Now { unimplemented!() }
//! # let key = keys::NoiseKeypair::generate(&mut CoreRng::from_seed([0; 32]));
//! let mut relay = Relay::new(RelayConfig::new([0; 32], key), [1; 32], now(), Vec::new());
//! loop {
//!     let deadline = loop {
//!         match relay.poll_output() {
//!             RelayOutput::Transmit { .. } | RelayOutput::Close { .. } => { /* write to the connection */ }
//!             RelayOutput::Store { .. } => { /* run it durably, then feed StoreDone */ }
//!             RelayOutput::Event(_) => { /* log, count */ }
//!             RelayOutput::Timeout(deadline) => break deadline,
//!         }
//!     };
//!     let input = wait(deadline);
//!     relay.handle_input(now(), input);
//! }
//! ```

mod deadlines;
mod decoy;
mod frames;
mod group;
mod handshake;
mod limits;
mod push_order;
mod repair;
mod slots;
mod store;

pub use limits::{RelayLimits, Source, TokenBucket};
pub use repair::{ChainCheck, ChainRepair};
pub use store::{GroupSnapshot, RESTORED_PUSH_IDS, RelayStoreOp, RelayStoreResult, next_blob};

use std::collections::{BTreeMap, VecDeque};

use crate::CoreRng;
use crate::io::{ConnId, OpId};
use crate::keys::{NoiseKeypair, NoiseSecret};
use crate::noise::{Channel, IkResponder, ReplayGuard};
use crate::time::{Duration, Instant, Now};
use crate::wire::{Bye, ByeReason, ErrorCode, ErrorFrame, Frame, RecordReader};
use deadlines::{Deadline, Deadlines};
use decoy::Decoy;
use group::Group;
use limits::SourceBuckets;
use push_order::PushOrder;
use slots::Slots;

/// How often retention runs.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// How often a relay over a shared store reads the heads of its groups with devices online,
/// in case a hint that another relay appended was lost.
pub const HEAD_POLL: Duration = Duration::from_secs(1);

/// The relay's identity and limits.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The relay's transport endpoint id (bound into every IK prologue).
    pub endpoint_id: [u8; 32],
    /// The relay's Noise static key, which devices pin.
    pub noise_key: NoiseKeypair,
    /// Every limit.
    pub limits: RelayLimits,
    /// Other relays share the store (PostgreSQL): group state is read from the store before a
    /// device is admitted, and heads are refreshed on hints and by a poll.
    pub shared_store: bool,
    /// Deliberate bugs, for proving the simulator's checks.
    #[cfg(feature = "planted-bugs")]
    pub bugs: crate::bugs::PlantedBugs,
}

impl RelayConfig {
    /// A configuration with default limits.
    pub fn new(endpoint_id: [u8; 32], noise_key: NoiseKeypair) -> Self {
        RelayConfig {
            endpoint_id,
            noise_key,
            limits: RelayLimits::default(),
            shared_store: false,
            #[cfg(feature = "planted-bugs")]
            bugs: Default::default(),
        }
    }
}

/// Something that happened to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayInput {
    /// A device connected; `peer` is its transport endpoint id.
    Accepted {
        /// The new connection.
        conn: ConnId,
        /// The device's transport endpoint id.
        peer: [u8; 32],
        /// Where it comes from, for per-source budgets.
        source: Source,
    },
    /// Bytes arrived (any chunking).
    Received {
        /// From this connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The connection is gone.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A deadline passed.
    Timeout,
    /// Another relay over the same store may have changed this group (a hint: it may be
    /// late, lost or false; the relay reads the store to know).
    GroupChanged {
        /// The group.
        group: [u8; 32],
    },
    /// A store operation finished.
    StoreDone {
        /// The operation.
        op: OpId,
        /// Its result.
        result: RelayStoreResult,
    },
}

/// What the relay wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOutput {
    /// Send bytes on a connection.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close a connection (after sending what was queued for it).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Run a store operation and report back with [`RelayInput::StoreDone`].
    Store {
        /// Its id.
        op: OpId,
        /// The operation.
        request: RelayStoreOp,
    },
    /// For logs and metrics.
    Event(RelayEvent),
    /// Nothing more to do until this deadline (or the next input).
    Timeout(Option<Instant>),
}

/// Why a connection was refused before or during authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The handshake message did not decrypt or was malformed.
    Handshake,
    /// Stale or replayed handshake timestamp.
    Replay,
    /// Unknown group or unregistered key.
    Unauthorized,
    /// Missing or wrong admission token.
    Admission,
    /// The handshake did not finish in time.
    Timeout,
    /// The peer broke the protocol after the handshake.
    Protocol,
    /// The relay already holds `max_connections` connections.
    Full,
    /// Sent frames faster than `frame_per_sec` for longer than `frame_burst` allows.
    Flood,
    /// A group creation over a limit: creations per time, `max_groups`, or storage refusing
    /// writes.
    Limited,
}

/// Observable relay events (no secrets, no payloads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEvent {
    /// A connection was refused or dropped for cause.
    Rejected {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: RejectReason,
    },
    /// A device authenticated.
    Authenticated {
        /// The connection.
        conn: ConnId,
    },
    /// A group was created.
    GroupCreated,
    /// A push became durable.
    Stored {
        /// Its cursor.
        cursor: u64,
        /// Envelope size.
        bytes: usize,
    },
    /// A store operation failed.
    StoreFailed,
    /// A limit refused a request.
    Limited {
        /// Which answer was sent.
        code: ErrorCode,
    },
}

enum Conn {
    Handshaking {
        reader: RecordReader,
        peer: [u8; 32],
        source: Source,
        deadline: Instant,
    },
    /// Waiting for the store: a group creation, or (shared store) the group's members.
    Creating {
        responder: Box<IkResponder>,
        leftover: Vec<u8>,
        source: Source,
    },
    LookingUp {
        responder: Box<IkResponder>,
        leftover: Vec<u8>,
        source: Source,
    },
    Open(Box<Session>),
}

/// What an authenticated connection may do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    Member { group: [u8; 32], key: [u8; 32] },
    Pairing,
}

struct Session {
    channel: Channel,
    role: Role,
    greeted: bool,
    source: Source,
    slot_opens: TokenBucket,
    /// Every frame takes a token.
    frames: TokenBucket,
    /// Keeps this connection's pushes in the device's order across refusals.
    push_order: PushOrder,
    /// A pull of this connection is being read from the store: another is ignored until it
    /// is answered (a device pulls one page at a time; a flood of pulls must not queue reads).
    pulling: bool,
    /// When a pairing connection is closed, however busy.
    expires: Option<Instant>,
    /// Slots this pairing connection opened that hold no invite it could join.
    decoys: Vec<Decoy>,
}

enum OpCtx {
    CreateGroup {
        conn: ConnId,
        group: [u8; 32],
        key: [u8; 32],
    },
    RegisterKey {
        conn: ConnId,
        group: [u8; 32],
        key: [u8; 32],
    },
    Append {
        group: [u8; 32],
        push_id: [u8; 16],
        size: usize,
    },
    /// A handshake waits for the group's members (`conn`), or a poll or hint refreshes it.
    Load {
        group: [u8; 32],
        conn: Option<ConnId>,
    },
    Read {
        conn: ConnId,
        group: [u8; 32],
        after: u64,
        head: u64,
    },
    SaveAck,
    Prune {
        group: [u8; 32],
    },
}

/// The relay.
pub struct Relay {
    config: RelayConfig,
    rng: CoreRng,
    now: Now,
    conns: BTreeMap<ConnId, Conn>,
    groups: BTreeMap<[u8; 32], Group>,
    creating: BTreeMap<[u8; 32], ConnId>,
    push_limits: BTreeMap<[u8; 32], TokenBucket>,
    slots: Slots,
    /// Invite lookups across all connections.
    slot_opens: TokenBucket,
    slot_opens_by_source: SourceBuckets,
    group_creates: TokenBucket,
    group_creates_by_source: SourceBuckets,
    /// Bytes stored and reserved across all groups.
    total_bytes: u64,
    /// Storage is out of space (or nearly): writes are refused, reads served.
    refusing_writes: bool,
    replay: ReplayGuard,
    ops: BTreeMap<OpId, OpCtx>,
    next_op: u64,
    out: VecDeque<RelayOutput>,
    next_retention: Instant,
    next_poll: Instant,
    /// Groups with a LoadGroup in flight for a poll or hint (one at a time each).
    refreshing: std::collections::BTreeSet<[u8; 32]>,
    deadlines: Deadlines,
    /// Derives the decoy inviters' keys.
    decoy_secret: NoiseSecret,
}

impl core::fmt::Debug for Relay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Relay")
            .field("conns", &self.conns.len())
            .field("groups", &self.groups.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay with the groups its store holds. `seed` must be 32 bytes of real entropy.
    pub fn new(config: RelayConfig, seed: [u8; 32], now: Now, groups: Vec<GroupSnapshot>) -> Self {
        let replay = ReplayGuard::new(config.limits.replay_guard_keys, config.limits.handshake_clock_window_ms);
        let limits = &config.limits;
        let slot_opens = TokenBucket::per(
            limits.slot_open_global_burst,
            limits.slot_open_global_per_sec,
            Duration::from_secs(1),
            now.mono,
        );
        let minute = Duration::from_secs(60);
        let slot_opens_by_source =
            SourceBuckets::per(limits.slot_open_source_burst, limits.slot_open_source_per_min, minute);
        let group_creates = TokenBucket::per(limits.group_create_burst, limits.group_create_per_min, minute, now.mono);
        let group_creates_by_source =
            SourceBuckets::per(limits.group_create_source_burst, limits.group_create_source_per_min, minute);
        let mut rng = CoreRng::from_seed(seed);
        let decoy_secret = NoiseSecret::random(&mut rng);
        let mut deadlines = Deadlines::default();
        let next_retention = now.mono + RETENTION_INTERVAL;
        if config.limits.retention_ttl.is_some() {
            deadlines.at(next_retention, Deadline::Retention);
        }
        if config.shared_store {
            deadlines.at(now.mono + HEAD_POLL, Deadline::HeadPoll);
        }
        Relay {
            total_bytes: groups.iter().map(|s| s.bytes).sum(),
            groups: groups.iter().map(|s| (s.group_id, Self::restore_group(&config, s))).collect(),
            config,
            rng,
            now,
            conns: BTreeMap::new(),
            creating: BTreeMap::new(),
            push_limits: BTreeMap::new(),
            slots: Slots::default(),
            slot_opens,
            slot_opens_by_source,
            group_creates,
            group_creates_by_source,
            refusing_writes: false,
            replay,
            ops: BTreeMap::new(),
            next_op: 0,
            out: VecDeque::new(),
            next_retention,
            next_poll: now.mono + HEAD_POLL,
            refreshing: Default::default(),
            deadlines,
            decoy_secret,
        }
    }

    fn restore_group(_config: &RelayConfig, snapshot: &GroupSnapshot) -> Group {
        Group::from_snapshot(snapshot)
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Now, input: RelayInput) {
        self.now = now;
        match input {
            RelayInput::Accepted { conn, .. } if self.conns.len() >= self.config.limits.max_connections => {
                self.event(RelayEvent::Rejected { conn, reason: RejectReason::Full });
                self.out.push_back(RelayOutput::Close { conn });
            }
            RelayInput::Accepted { conn, peer, source } => {
                let reader = RecordReader::new(self.config.limits.max_preauth_record);
                let deadline = now.mono + self.config.limits.handshake_timeout;
                self.conns.insert(conn, Conn::Handshaking { reader, peer, source, deadline });
                self.schedule(deadline, Deadline::Conn(conn));
            }
            RelayInput::Received { conn, bytes } => self.on_bytes(conn, &bytes),
            RelayInput::Closed { conn } => self.forget(conn),
            RelayInput::Timeout => self.on_timeout(),
            RelayInput::GroupChanged { group } => self.refresh_group(group),
            RelayInput::StoreDone { op, result } => self.on_store_done(op, result),
        }
    }

    /// The next thing to do; [`RelayOutput::Timeout`] when there is nothing until a deadline.
    #[must_use]
    pub fn poll_output(&mut self) -> RelayOutput {
        self.out.pop_front().unwrap_or_else(|| RelayOutput::Timeout(self.poll_timeout()))
    }

    /// The earliest deadline: a handshake timeout, a connection's or slot's end, a decoy's
    /// reply or the retention tick. It may come early (the cause gone); a tick then does nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    fn schedule(&mut self, when: Instant, what: Deadline) {
        self.deadlines.at(when, what);
        let live = self.conns.len() + 2 * self.slots.len() + 1;
        if self.deadlines.bloated(live) {
            let conns = self.conns.iter().flat_map(|(id, c)| {
                let own = match c {
                    Conn::Handshaking { deadline, .. } => Some(*deadline),
                    Conn::Open(s) => s.expires,
                    Conn::Creating { .. } | Conn::LookingUp { .. } => None,
                };
                let decoys = match c {
                    Conn::Open(s) => s.decoys.iter().map(Decoy::next_due).min(),
                    _ => None,
                };
                own.map(|t| (t, Deadline::Conn(*id))).into_iter().chain(decoys.map(|t| (t, Deadline::Decoy(*id))))
            });
            let slots = self.slots.deadlines().map(|(t, n)| (t, Deadline::Slot(n)));
            let retention = self.retention_enabled().then_some((self.next_retention, Deadline::Retention));
            let poll = self.config.shared_store.then_some((self.next_poll, Deadline::HeadPoll));
            let live: Vec<_> = conns.chain(slots).chain(retention).chain(poll).collect();
            self.deadlines.rebuild(live);
        }
    }

    /// Tells the relay whether its storage can take writes: while it cannot (the disk is full,
    /// or below the operator's free-space floor), pushes are refused with `QuotaExceeded` and
    /// group creations and key registrations are refused; pulls are still served.
    pub fn set_refusing_writes(&mut self, refusing: bool) {
        self.refusing_writes = refusing;
    }

    /// Whether writes are refused (see [`Self::set_refusing_writes`]).
    pub fn refusing_writes(&self) -> bool {
        self.refusing_writes
    }

    /// Number of open connections (any phase).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// A connection's phase, for diagnostics: `handshaking`, `creating`, `open`, `open-member`.
    pub fn connection_phase(&self, conn: ConnId) -> Option<&'static str> {
        self.conns.get(&conn).map(|c| match c {
            Conn::Handshaking { .. } => "handshaking",
            Conn::Creating { .. } => "creating",
            Conn::LookingUp { .. } => "looking-up",
            Conn::Open(s) if !s.greeted => "open-ungreeted",
            Conn::Open(s) if matches!(s.role, Role::Member { .. }) => "open-member",
            Conn::Open(_) => "open-pairing",
        })
    }

    /// The durable head of a group, if the group exists.
    pub fn group_head(&self, group: &[u8; 32]) -> Option<u64> {
        self.groups.get(group).map(|g| g.head)
    }

    fn retention_enabled(&self) -> bool {
        self.config.limits.retention_ttl.is_some()
    }

    fn store(&mut self, request: RelayStoreOp, ctx: OpCtx) {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.ops.insert(op, ctx);
        self.out.push_back(RelayOutput::Store { op, request });
    }

    fn event(&mut self, e: RelayEvent) {
        self.out.push_back(RelayOutput::Event(e));
    }

    fn reject(&mut self, conn: ConnId, reason: RejectReason) {
        self.event(RelayEvent::Rejected { conn, reason });
        self.close(conn);
    }

    fn close(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.forget(conn);
            self.out.push_back(RelayOutput::Close { conn });
        }
    }

    /// Drops every trace of a connection: group presence, slots, pending waits.
    fn forget(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        match state {
            Conn::Open(session) => {
                if let Role::Member { group, .. } = session.role
                    && let Some(g) = self.groups.get_mut(&group)
                {
                    g.forget_conn(conn);
                }
            }
            Conn::Creating { .. } => self.creating.retain(|_, c| *c != conn),
            Conn::Handshaking { .. } | Conn::LookingUp { .. } => {}
        }
        for (slot, is_inviter) in self.slots.involving(conn) {
            if is_inviter {
                if let Some(s) = self.slots.remove(slot)
                    && let Some(joiner) = s.joiner
                {
                    self.send(joiner, &slot_close(slot, crate::wire::SlotCloseReason::Cancelled));
                }
            } else {
                self.fail_attempt(slot);
            }
        }
    }

    /// Ends the attempt of `slot`'s attached joiner as failed: the inviter is told, the slot
    /// waits for the next joiner. Returns the joiner that was attached.
    fn fail_attempt(&mut self, slot: u32) -> Option<ConnId> {
        let joiner = self.slots.detach(slot);
        if let Some(inviter) = self.slots.get(slot).map(|s| s.inviter) {
            self.send(inviter, &slot_close(slot, crate::wire::SlotCloseReason::Failed));
        }
        joiner
    }

    /// Encrypts and queues a frame for an open connection.
    fn send(&mut self, conn: ConnId, frame: &Frame) {
        let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut bytes = Vec::new();
        if session.channel.send(frame, &mut bytes).is_ok() {
            self.out.push_back(RelayOutput::Transmit { conn, bytes });
        }
    }

    fn send_error(&mut self, conn: ConnId, code: ErrorCode, retry_after: Duration) {
        if matches!(code, ErrorCode::RateLimited | ErrorCode::QuotaExceeded | ErrorCode::TooLarge) {
            self.event(RelayEvent::Limited { code });
        }
        self.send(conn, &Frame::Error(ErrorFrame { code, retry_after_ms: retry_after.as_millis() }));
    }

    fn on_timeout(&mut self) {
        let now = self.now.mono;
        for what in self.deadlines.due(now) {
            match what {
                Deadline::Conn(conn) => self.conn_due(conn, now),
                Deadline::Slot(slot) => self.slot_due(slot, now),
                Deadline::Decoy(conn) => self.decoy_due(conn, now),
                Deadline::Retention if self.retention_enabled() && self.next_retention <= now => {
                    self.next_retention = now + RETENTION_INTERVAL;
                    self.schedule(self.next_retention, Deadline::Retention);
                    self.run_retention();
                }
                Deadline::Retention => {}
                Deadline::HeadPoll if self.next_poll <= now => {
                    self.next_poll = now + HEAD_POLL;
                    self.schedule(self.next_poll, Deadline::HeadPoll);
                    let online: Vec<[u8; 32]> =
                        self.groups.iter().filter(|(_, g)| !g.online.is_empty()).map(|(id, _)| *id).collect();
                    online.into_iter().for_each(|group| self.refresh_group(group));
                }
                Deadline::HeadPoll => {}
            }
        }
    }

    /// A handshake that took too long, or a pairing connection at the end of its life.
    fn conn_due(&mut self, conn: ConnId, now: Instant) {
        match self.conns.get(&conn) {
            Some(Conn::Handshaking { deadline, .. }) if *deadline <= now => self.reject(conn, RejectReason::Timeout),
            Some(Conn::Open(s)) if s.expires.is_some_and(|e| e <= now) => self.close(conn),
            _ => {}
        }
    }

    /// A slot that expired, or whose attached joiner's attempt ran out.
    fn slot_due(&mut self, slot: u32, now: Instant) {
        let Some(s) = self.slots.get(slot) else { return };
        if s.expires <= now {
            if let Some(s) = self.slots.remove(slot) {
                let reason = crate::wire::SlotCloseReason::Expired;
                self.send(s.inviter, &slot_close(slot, reason));
                if let Some(j) = s.joiner {
                    self.send(j, &slot_close(slot, reason));
                }
            }
        } else if s.attempt_ends.is_some_and(|t| t <= now) {
            // The inviter hears it as a joiner that left; the joiner, that its attempt failed.
            if let Some(joiner) = self.fail_attempt(slot) {
                self.send(joiner, &slot_close(slot, crate::wire::SlotCloseReason::Failed));
            }
        }
    }

    fn run_retention(&mut self) {
        let ttl_cutoff =
            self.config.limits.retention_ttl.map(|ttl| self.now.unix_ms.saturating_sub(ttl.as_millis())).unwrap_or(0);
        // A group with nothing stored has nothing to prune.
        let due: Vec<[u8; 32]> = self.groups.iter().filter(|(_, g)| g.stored_blobs > 0).map(|(id, _)| *id).collect();
        for group in due {
            self.prune(group, ttl_cutoff);
        }
    }

    fn prune(&mut self, group: [u8; 32], stored_before_ms: u64) {
        if !self.groups.contains_key(&group) {
            return;
        }
        let all_acked = self.config.limits.retention_all_acked;
        self.store(RelayStoreOp::Prune { group_id: group, all_acked, stored_before_ms }, OpCtx::Prune { group });
    }

    /// Reads a group's state from a shared store (one read in flight per group), to learn
    /// what other relays appended: on a hint, and by the poll.
    fn refresh_group(&mut self, group: [u8; 32]) {
        if !self.groups.contains_key(&group) || !self.refreshing.insert(group) {
            return;
        }
        self.store(RelayStoreOp::LoadGroup { group_id: group }, OpCtx::Load { group, conn: None });
    }
}

fn slot_close(slot: u32, reason: crate::wire::SlotCloseReason) -> Frame {
    Frame::SlotClose(crate::wire::SlotClose { slot, reason })
}

fn bye(reason: ByeReason) -> Frame {
    Frame::Bye(Bye { reason })
}

#[cfg(test)]
mod tests;
