//! Relay unit tests: one device driven by hand against the state machine, store effects
//! answered by the test. Each limit is tested at limit − 1, limit and limit + 1.

use super::*;
use crate::io::StoreError;
use crate::keys::{GroupId, NoisePublic};
use crate::noise::{ClientAuth, IkInitiator, Intent};
use crate::wire::*;

const T0: u64 = 1_700_000_000_000;

struct Dev {
    conn: ConnId,
    channel: Option<Channel>,
    init: Option<IkInitiator>,
}

struct World {
    relay: Relay,
    rng: CoreRng,
    relay_pub: NoisePublic,
    now: Now,
    group: GroupId,
    ts: u64,
    next_conn: u64,
    stores: Vec<(OpId, RelayStoreOp)>,
    /// Every store operation issued, to answer `Done` to an append as a store would.
    issued: BTreeMap<OpId, RelayStoreOp>,
    /// The cursor the test's store appended last.
    stored_head: u64,
    closed: Vec<ConnId>,
    events: Vec<RelayEvent>,
    inbox: BTreeMap<ConnId, Vec<u8>>,
    /// Where the next connection comes from.
    source: Source,
}

impl World {
    fn new(limits: RelayLimits) -> Self {
        let mut rng = CoreRng::from_seed([1; 32]);
        let key = NoiseKeypair::generate(&mut rng);
        let relay_pub = key.public();
        let now = Now::new(1_000_000, T0);
        let mut config = RelayConfig::new([9; 32], key);
        config.limits = limits;
        let group = GroupId::random(&mut rng);
        World {
            relay: Relay::new(config, [2; 32], now, Vec::new()),
            rng,
            relay_pub,
            now,
            group,
            ts: T0,
            next_conn: 1,
            stores: Vec::new(),
            issued: BTreeMap::new(),
            stored_head: 0,
            closed: Vec::new(),
            events: Vec::new(),
            inbox: BTreeMap::new(),
            source: Source([7; 16]),
        }
    }

    /// Feeds an input; `Done` for an append is the store's `Stored` at its next cursor.
    fn input(&mut self, mut input: RelayInput) {
        if let RelayInput::StoreDone { op, result } = &mut input
            && *result == RelayStoreResult::Done
            && let Some(RelayStoreOp::Append { .. }) = self.issued.get(op)
        {
            self.stored_head += 1;
            *result = RelayStoreResult::Stored { cursor: self.stored_head, chain: [self.stored_head as u8; 32] };
        }
        self.relay.handle_input(self.now, input);
        loop {
            match self.relay.poll_output() {
                RelayOutput::Transmit { conn, bytes } => self.inbox.entry(conn).or_default().extend(bytes),
                RelayOutput::Close { conn } => self.closed.push(conn),
                RelayOutput::Store { op, request } => {
                    self.issued.insert(op, request.clone());
                    self.stores.push((op, request));
                }
                RelayOutput::Event(e) => self.events.push(e),
                RelayOutput::Timeout(_) => break,
            }
        }
    }

    fn connect(&mut self, key: &NoiseKeypair, intent: Intent) -> Dev {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let peer = [conn.0 as u8; 32];
        self.input(RelayInput::Accepted { conn, peer, source: self.source });
        self.ts += 1;
        let auth = ClientAuth::new(&self.group, self.ts, intent);
        let prologue = crate::noise::ik_prologue(&peer, &[9; 32]);
        let (init, m1) = IkInitiator::start(&mut self.rng, key, &self.relay_pub, &prologue, &auth).unwrap();
        let mut bytes = Vec::new();
        encode_record(&m1, &mut bytes).unwrap();
        self.input(RelayInput::Received { conn, bytes });
        Dev { conn, channel: None, init: Some(init) }
    }

    /// Finishes the handshake if the relay answered, then returns all frames received.
    fn frames(&mut self, dev: &mut Dev) -> Vec<Frame> {
        let bytes = self.inbox.remove(&dev.conn).unwrap_or_default();
        let mut reader = RecordReader::new(MAX_RECORD_LEN);
        reader.push(&bytes);
        if let Some(init) = dev.init.take() {
            let Some(m2) = reader.next_record().unwrap() else {
                dev.init = Some(init);
                return Vec::new();
            };
            dev.channel = Some(Channel::new(init.finish(&m2).unwrap(), &[]));
        }
        let ch = dev.channel.as_mut().unwrap();
        ch.receive(&reader.take_buffered());
        let mut out = Vec::new();
        while let Some(f) = ch.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    fn send(&mut self, dev: &mut Dev, frame: Frame) {
        let mut bytes = Vec::new();
        dev.channel.as_mut().unwrap().send(&frame, &mut bytes).unwrap();
        self.input(RelayInput::Received { conn: dev.conn, bytes });
    }

    /// A greeted member connection (creates the group on first use).
    fn member(&mut self, key: &NoiseKeypair, create: bool) -> Dev {
        let intent = if create { Intent::CreateGroup { admission_token: None } } else { Intent::Member };
        let mut dev = self.connect(key, intent);
        if create {
            self.complete_all(RelayStoreResult::Done);
        }
        assert!(self.frames(&mut dev).is_empty());
        self.send(&mut dev, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
        assert!(matches!(self.frames(&mut dev)[..], [Frame::Welcome(_)]));
        dev
    }

    fn complete_all(&mut self, result: RelayStoreResult) {
        for (op, _) in std::mem::take(&mut self.stores) {
            self.input(RelayInput::StoreDone { op, result: result.clone() });
        }
    }

    fn push(&mut self, dev: &mut Dev, id: u8, size: usize) {
        self.send(dev, Frame::Push(Push { push_id: [id; 16], envelope: Bytes(vec![id; size]) }));
    }
}

fn error_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| if let Frame::Error(e) = f { Some(e.code) } else { None })
}

#[test]
fn push_is_acknowledged_only_after_the_store_and_notifies_others() {
    let mut w = World::new(RelayLimits::default());
    let k1 = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k1, true);
    w.send(&mut a, Frame::RegisterDevice(RegisterDevice { access_key: [7; 32] }));
    w.complete_all(RelayStoreResult::Done);
    assert!(matches!(w.frames(&mut a)[..], [Frame::DeviceRegistered(_)]));
    let k2 = NoiseKeypair::from_secret(crate::keys::NoiseSecret::random(&mut w.rng));
    w.send(&mut a, Frame::RegisterDevice(RegisterDevice { access_key: k2.public().0 }));
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    let mut b = w.member(&k2, false);

    w.push(&mut a, 1, 400);
    assert!(w.frames(&mut a).is_empty(), "no ack before the store is durable");
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Append { push_id: [1, ..], after: None, .. })]));
    w.complete_all(RelayStoreResult::Done);
    assert_eq!(w.frames(&mut a), vec![Frame::PushAck(PushAck { push_id: [1; 16], cursor: 1 })]);
    assert_eq!(w.frames(&mut b), vec![Frame::Notify(Notify { cursor: 1 })]);
}

#[test]
fn retries_are_idempotent_by_push_id() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 5, 300);
    w.push(&mut a, 5, 300);
    assert_eq!(w.stores.len(), 1, "a retry while pending waits for the same append");
    w.complete_all(RelayStoreResult::Done);
    let acks = w.frames(&mut a);
    assert_eq!(acks, vec![Frame::PushAck(PushAck { push_id: [5; 16], cursor: 1 }); 2]);
    w.push(&mut a, 5, 300);
    assert!(w.stores.is_empty(), "a retry after durability is answered from memory");
    assert_eq!(w.frames(&mut a), vec![Frame::PushAck(PushAck { push_id: [5; 16], cursor: 1 })]);
    // A retry the relay forgot is caught by the store.
    w.push(&mut a, 6, 300);
    w.complete_all(RelayStoreResult::Duplicate { cursor: 1 });
    assert_eq!(w.frames(&mut a), vec![Frame::PushAck(PushAck { push_id: [6; 16], cursor: 1 })]);
    assert_eq!(w.relay.group_head(w.group.expose()), Some(1));
    assert!(w.stores.is_empty(), "nothing to read again: the duplicate is below the head");
    // One stored beyond what this relay knows (by another relay, or before a lost answer):
    // the head is read again before devices are told anything.
    w.push(&mut a, 7, 300);
    w.complete_all(RelayStoreResult::Duplicate { cursor: 5 });
    assert_eq!(w.frames(&mut a), vec![Frame::PushAck(PushAck { push_id: [7; 16], cursor: 5 })]);
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::LoadGroup { .. })]), "{:?}", w.stores);
}

#[test]
fn the_head_is_where_the_store_appended_last() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 300);
    w.push(&mut a, 2, 300);
    let ops = std::mem::take(&mut w.stores);
    assert!(matches!(ops[1].1, RelayStoreOp::Append { after: Some([1, ..]), .. }), "2 goes after 1");
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    assert!(w.stores.is_empty(), "nothing readable yet");
    w.frames(&mut a);
    // Another relay appended cursors 1-3 meanwhile: push 1 went to cursor 4.
    let chain = [4; 32];
    w.input(RelayInput::StoreDone { op: ops[0].0, result: RelayStoreResult::Stored { cursor: 4, chain } });
    assert_eq!(w.relay.group_head(w.group.expose()), Some(4));
    let told = vec![Frame::PushAck(PushAck { push_id: [1; 16], cursor: 4 }), Frame::Notify(Notify { cursor: 4 })];
    assert_eq!(w.frames(&mut a), told, "the pusher hears of the blobs before its own too");
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Read { up_to: 4, .. })]), "{:?}", w.stores);
    w.input(RelayInput::StoreDone { op: ops[1].0, result: RelayStoreResult::Failed(StoreError::Full) });
    assert_eq!(w.relay.group_head(w.group.expose()), Some(4));
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::Unavailable));
}

#[test]
fn envelope_size_limit() {
    let limits = RelayLimits { max_envelope: 1000, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 999);
    w.push(&mut a, 2, 1000);
    assert_eq!(w.stores.len(), 2);
    w.push(&mut a, 3, 1001);
    assert_eq!(w.stores.len(), 2, "no state change on rejection");
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::TooLarge));
}

#[test]
fn group_quota_in_blobs_and_bytes() {
    let limits = RelayLimits { group_quota_blobs: 2, group_quota_bytes: 10_000, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    w.push(&mut a, 2, 100);
    w.push(&mut a, 3, 100);
    assert_eq!(w.stores.len(), 2);
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::QuotaExceeded));

    let limits = RelayLimits { group_quota_bytes: 1000, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 499);
    w.push(&mut a, 2, 501);
    assert_eq!(w.stores.len(), 2, "exactly at the byte quota");
    w.push(&mut a, 3, 1);
    assert_eq!(w.stores.len(), 2);
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::QuotaExceeded));
}

#[test]
fn push_rate_limit_per_key() {
    let limits = RelayLimits { push_burst: 3, push_per_sec: 1, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    for id in 1..=3 {
        w.push(&mut a, id, 300);
    }
    assert_eq!(w.stores.len(), 3);
    w.push(&mut a, 4, 300);
    assert_eq!(w.stores.len(), 3);
    let f = w.frames(&mut a);
    assert!(matches!(f.last(), Some(Frame::Error(ErrorFrame { code: ErrorCode::RateLimited, retry_after_ms: 1000 }))));
    w.now.mono = w.now.mono + Duration::from_secs(1);
    w.push(&mut a, 4, 300);
    assert_eq!(w.stores.len(), 4, "refilled after the interval");
}

#[test]
fn pull_pages_and_truncation() {
    let limits = RelayLimits { max_page_blobs: 2, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    for id in 1..=3 {
        w.push(&mut a, id, 300);
    }
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 100 }));
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Read { after: 0, up_to: 3, limit: 2, .. })]));
    w.complete_all(RelayStoreResult::Blobs { prev_chain: None, blobs: Vec::new(), more: true });
    assert!(matches!(&w.frames(&mut a)[..], [Frame::Blobs(Blobs { has_more: true, max_cursor: 3, .. })]));
    w.send(&mut a, Frame::Pull(Pull { after: 3, limit: 100 }));
    assert!(w.stores.is_empty(), "nothing after the head: answered without a read");
    assert!(matches!(&w.frames(&mut a)[..], [Frame::Blobs(Blobs { has_more: false, max_cursor: 3, .. })]));
    // Retention removed cursors 1 and 2.
    w.now.mono = w.now.mono + Duration::from_secs(61);
    w.input(RelayInput::Timeout);
    let prune = w.stores.iter().find(|(_, r)| matches!(r, RelayStoreOp::Prune { .. })).unwrap().0;
    w.stores.clear();
    w.input(RelayInput::StoreDone {
        op: prune,
        result: RelayStoreResult::Pruned { earliest: 3, bytes: 300, blobs: 1 },
    });
    w.send(&mut a, Frame::Pull(Pull { after: 1, limit: 100 }));
    assert_eq!(w.frames(&mut a), vec![Frame::Truncated(Truncated { earliest: 3 })]);
    w.send(&mut a, Frame::Pull(Pull { after: 2, limit: 100 }));
    assert_eq!(w.stores.len(), 1, "after = earliest − 1 is still complete");
}

#[test]
fn unauthorized_replayed_and_slow_handshakes_are_closed() {
    let mut w = World::new(RelayLimits { admission_token: Some(b"secret".to_vec()), ..RelayLimits::default() });
    let k = NoiseKeypair::generate(&mut w.rng);
    let d = w.connect(&k, Intent::Member);
    assert_eq!(w.closed, vec![d.conn], "unknown group");
    let d = w.connect(&k, Intent::CreateGroup { admission_token: Some(Bytes(b"wrong".to_vec())) });
    assert_eq!(w.closed.last(), Some(&d.conn), "bad admission token");
    let d = w.connect(&k, Intent::CreateGroup { admission_token: Some(Bytes(b"secret".to_vec())) });
    assert!(!w.closed.contains(&d.conn));
    w.complete_all(RelayStoreResult::Done);
    // Replay: same timestamp again.
    w.ts -= 1;
    let d = w.connect(&k, Intent::Member);
    assert_eq!(w.closed.last(), Some(&d.conn));
    assert!(w.events.contains(&RelayEvent::Rejected { conn: d.conn, reason: RejectReason::Replay }));
    // Handshake never sent: closed at the deadline, not before.
    let conn = ConnId(99);
    w.input(RelayInput::Accepted { conn, peer: [1; 32], source: Source::UNKNOWN });
    w.now.mono = w.now.mono + Duration::from_secs(10) - Duration(1);
    w.input(RelayInput::Timeout);
    assert!(!w.closed.contains(&conn));
    w.now.mono = w.now.mono + Duration(1);
    w.input(RelayInput::Timeout);
    assert!(w.closed.contains(&conn));
}

#[test]
fn preauth_record_cap() {
    let mut w = World::new(RelayLimits { max_preauth_record: 200, ..RelayLimits::default() });
    for (len, closed) in [(199u16, true), (200, true), (201, true)] {
        // Garbage of the given declared length: refused as soon as it is complete, or at once
        // when the declared length is over the cap.
        let conn = ConnId(u64::from(len));
        w.input(RelayInput::Accepted { conn, peer: [0; 32], source: Source::UNKNOWN });
        w.input(RelayInput::Received { conn, bytes: len.to_be_bytes().to_vec() });
        let early = w.closed.contains(&conn);
        assert_eq!(early, len > 200, "len {len}");
        w.input(RelayInput::Received { conn, bytes: vec![0; usize::from(len)] });
        assert_eq!(w.closed.contains(&conn), closed);
    }
}

#[test]
fn pairing_slots_forward_and_limit_attempts() {
    let mut w = World::new(RelayLimits { max_slot_attempts: 3, slot_open_burst: 10, ..RelayLimits::default() });
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut inviter = w.member(&k, true);
    w.send(&mut inviter, Frame::SlotRegister(SlotRegister { slot: 42, expires_at_ms: T0 + 60_000 }));
    assert_eq!(w.frames(&mut inviter), vec![Frame::SlotRegistered(SlotRegistered { slot: 42 })]);
    let pk = NoiseKeypair::generate(&mut w.rng);
    let mut joiner = w.connect(&pk, Intent::Pairing);
    w.frames(&mut joiner);
    w.send(&mut joiner, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    w.frames(&mut joiner);
    for attempt in 1..=4 {
        w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 42 }));
        if attempt == 4 {
            // Used up: a decoy takes the attempt, the inviter hears nothing.
            assert!(w.frames(&mut joiner).is_empty(), "attempt {attempt}");
            assert!(w.frames(&mut inviter).is_empty(), "attempt {attempt}");
            break;
        }
        assert_eq!(w.frames(&mut inviter), vec![Frame::SlotOpen(SlotOpen { slot: 42 })]);
        let msg = Frame::SlotMessage(SlotMessage { slot: 42, data: Bytes(vec![attempt]) });
        w.send(&mut joiner, msg.clone());
        assert_eq!(w.frames(&mut inviter), vec![msg]);
        let close = Frame::SlotClose(SlotClose { slot: 42, reason: SlotCloseReason::Failed });
        w.send(&mut inviter, close.clone());
        assert_eq!(w.frames(&mut joiner), vec![close]);
    }
    // Strangers cannot talk on a slot they are not part of.
    let mut stranger = pairing(&mut w);
    w.send(&mut stranger, Frame::SlotMessage(SlotMessage { slot: 42, data: Bytes(vec![0]) }));
    assert_eq!(error_code(&w.frames(&mut stranger)), Some(ErrorCode::NotFound));
    assert!(w.frames(&mut inviter).is_empty());
}

#[test]
fn slot_lookups_are_rate_limited_per_connection() {
    let mut w = World::new(RelayLimits { slot_open_burst: 2, slot_open_per_min: 1, ..RelayLimits::default() });
    let pk = NoiseKeypair::generate(&mut w.rng);
    let mut joiner = w.connect(&pk, Intent::Pairing);
    w.frames(&mut joiner);
    w.send(&mut joiner, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    w.frames(&mut joiner);
    for (i, expect) in [None, None, Some(ErrorCode::RateLimited)].into_iter().enumerate() {
        w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: i as u32 }));
        assert_eq!(error_code(&w.frames(&mut joiner)), expect, "lookup {i}");
    }
}

#[test]
fn frames_before_hello_or_outside_the_role_are_refused() {
    let mut w = World::new(RelayLimits::default());
    let pk = NoiseKeypair::generate(&mut w.rng);
    let mut joiner = w.connect(&pk, Intent::Pairing);
    w.frames(&mut joiner);
    w.send(&mut joiner, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    w.frames(&mut joiner);
    w.push(&mut joiner, 1, 300);
    assert!(w.stores.is_empty());
    assert_eq!(error_code(&w.frames(&mut joiner)), Some(ErrorCode::BadRequest));
    let mut early = w.connect(&pk, Intent::Pairing);
    w.frames(&mut early);
    w.send(&mut early, Frame::Ping(Ping { nonce: 1 }));
    assert!(w.closed.contains(&early.conn));
    let mut old = w.connect(&pk, Intent::Pairing);
    w.frames(&mut old);
    w.send(&mut old, Frame::Hello(Hello { min_version: 2, max_version: 3, acked_cursor: 0 }));
    assert_eq!(error_code(&w.frames(&mut old)), Some(ErrorCode::UnsupportedVersion));
    assert!(w.closed.contains(&old.conn));
}

/// Regression (the SIGKILL test): a push that failed let the same device's later pushes be
/// stored before it, so its blobs were out of sequence order in the log and readers waited a
/// long time (or, past their gap buffer, for ever) for the missing one.
#[test]
fn after_a_refused_push_later_ones_wait_for_its_resend() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    w.complete_all(RelayStoreResult::Failed(StoreError::Io));
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::Unavailable));
    // Pushes sent before the device heard of the failure are refused, not stored.
    w.push(&mut a, 2, 100);
    w.push(&mut a, 3, 100);
    assert!(w.stores.is_empty(), "nothing is stored ahead of the failed push");
    let refusals: Vec<Option<ErrorCode>> =
        w.frames(&mut a).iter().map(|f| error_code(std::slice::from_ref(f))).collect();
    assert_eq!(refusals, [Some(ErrorCode::Unavailable); 2], "each is refused, so the device sends it again");
    // The device resends in order from the failed one: all of it is taken.
    for id in 1..=3 {
        w.push(&mut a, id, 100);
    }
    let order: Vec<(u8, Option<u8>)> = w
        .stores
        .iter()
        .filter_map(|(_, op)| match op {
            RelayStoreOp::Append { push_id, after, .. } => Some((push_id[0], after.map(|a| a[0]))),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![(1, None), (2, Some(1)), (3, Some(2))], "in order, each after the one before");
    w.complete_all(RelayStoreResult::Done);
    let acks: Vec<u64> =
        w.frames(&mut a).iter().filter_map(|f| if let Frame::PushAck(p) = f { Some(p.cursor) } else { None }).collect();
    assert_eq!(acks, vec![1, 2, 3], "all acknowledged, at dense cursors");
}

#[test]
fn a_rate_limited_push_holds_back_later_ones_until_resent_or_acknowledged() {
    let limits = RelayLimits { push_burst: 1, push_per_sec: 1, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    let pending = std::mem::take(&mut w.stores);
    w.push(&mut a, 1, 100);
    assert_eq!(error_code(&w.frames(&mut a)), Some(ErrorCode::RateLimited), "a resend over the limit");
    w.now.mono = w.now.mono + Duration::from_secs(1);
    w.push(&mut a, 2, 100);
    assert!(w.stores.is_empty(), "held back behind the refused push 1");
    // Push 1's first copy becomes durable: the device hears its ack and will not resend it,
    // so it holds nothing back any more.
    w.input(RelayInput::StoreDone { op: pending[0].0, result: RelayStoreResult::Done });
    assert!(w.frames(&mut a).iter().any(|f| matches!(f, Frame::PushAck(PushAck { push_id: [1, ..], .. }))));
    w.push(&mut a, 2, 100);
    assert_eq!(w.stores.len(), 1, "taken after the ack");
}

#[test]
fn a_restarted_relay_answers_resent_pushes_from_the_restored_ids() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    w.complete_all(RelayStoreResult::Done);
    let snapshot = GroupSnapshot {
        group_id: *w.group.expose(),
        keys: vec![k.public().0],
        head: 1,
        chain: None,
        earliest: 1,
        bytes: 100,
        blobs: 1,
        acked: Vec::new(),
        recent: vec![([1; 16], 1)],
    };
    let same_key = NoiseKeypair::generate(&mut CoreRng::from_seed([1; 32]));
    let mut restarted = Relay::new(RelayConfig::new([9; 32], same_key), [3; 32], w.now, vec![snapshot]);
    assert_eq!(restarted.group_head(w.group.expose()), Some(1));
    std::mem::swap(&mut w.relay, &mut restarted);
    let mut a = w.member(&k, false);
    w.push(&mut a, 1, 100);
    assert!(w.stores.is_empty(), "no new cursor for a push the store holds");
    assert_eq!(w.frames(&mut a), vec![Frame::PushAck(PushAck { push_id: [1; 16], cursor: 1 })]);
}

/// Regression (simulation seed 68 of the order check): a push waiting in the store on a push
/// whose append failed is bound to fail; its device's later pushes must wait from the moment
/// that is known, not only from when it fails, or they are stored ahead of it.
#[test]
fn pushes_behind_a_doomed_one_wait_from_the_moment_it_is_doomed() {
    let mut w = World::new(RelayLimits::default());
    let k1 = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k1, true);
    let k2 = NoiseKeypair::from_secret(crate::keys::NoiseSecret::random(&mut w.rng));
    w.send(&mut a, Frame::RegisterDevice(RegisterDevice { access_key: k2.public().0 }));
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    let mut b = w.member(&k2, false);
    w.push(&mut b, 1, 100);
    w.push(&mut b, 2, 100);
    w.push(&mut a, 9, 100);
    let ops = std::mem::take(&mut w.stores);
    assert!(matches!(ops[2].1, RelayStoreOp::Append { after: None, .. }), "a's order is its own");
    w.input(RelayInput::StoreDone { op: ops[0].0, result: RelayStoreResult::Failed(StoreError::Io) });
    w.push(&mut b, 3, 100);
    assert!(w.stores.is_empty(), "3 would be stored ahead of 2, which waits on the failed 1");
    w.push(&mut b, 2, 100);
    assert_eq!(error_code(&w.frames(&mut b)), Some(ErrorCode::Unavailable), "a resend of a doomed push is refused");
    w.input(RelayInput::StoreDone { op: ops[1].0, result: RelayStoreResult::Failed(StoreError::Io) });
    w.input(RelayInput::StoreDone { op: ops[2].0, result: RelayStoreResult::Done });
    for id in [1, 2, 3] {
        w.push(&mut b, id, 100);
    }
    let ids: Vec<u8> = w
        .stores
        .iter()
        .filter_map(|(_, op)| if let RelayStoreOp::Append { push_id, .. } = op { Some(push_id[0]) } else { None })
        .collect();
    assert_eq!(ids, vec![1, 2, 3], "in b's order once it resends");
}

/// Regression (the late-joiner test on the real binaries): a CLI command's last `Ack` is often
/// lost as it exits, and the cursor its next `Hello` carries was neither saved nor acted on, so
/// retention waited for an acknowledgement that never came.
#[test]
fn the_cursor_a_device_says_hello_with_is_saved_as_its_acknowledgement() {
    let mut w = World::new(RelayLimits { retention_all_acked: true, ..RelayLimits::default() });
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    for id in 1..=3 {
        w.push(&mut a, id, 100);
    }
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    let mut again = w.connect(&k, Intent::Member);
    w.frames(&mut again);
    w.send(&mut again, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 2 }));
    let saved = w.stores.iter().any(|(_, op)| matches!(op, RelayStoreOp::SaveAck { cursor: 2, .. }));
    let pruned = w.stores.iter().any(|(_, op)| matches!(op, RelayStoreOp::Prune { all_acked: true, .. }));
    assert!(saved && pruned, "{:?}", w.stores);
}

/// Issue 14: a member that floods pulls (and reads nothing) queued one store read, and one page
/// of up to 1.5 MiB, per pull.
#[test]
fn a_connection_has_at_most_one_pull_being_read() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    for id in 1..=3 {
        w.push(&mut a, id, 100);
    }
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    for _ in 0..1_000 {
        w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    }
    let reads = || w.stores.iter().filter(|(_, op)| matches!(op, RelayStoreOp::Read { .. })).count();
    assert_eq!(reads(), 1, "one read at a time");
    let (op, request) = w.stores.remove(0);
    let RelayStoreOp::Read { .. } = request else { panic!("{request:?}") };
    w.input(RelayInput::StoreDone {
        op,
        result: RelayStoreResult::Blobs { prev_chain: None, blobs: Vec::new(), more: false },
    });
    assert!(matches!(w.frames(&mut a)[..], [Frame::Blobs(_)]));
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    assert_eq!(w.stores.len(), 1, "answered, it may pull again");
}

/// Issue 14: bytes a connection sent while its group was being created were buffered without
/// a cap.
#[test]
fn bytes_sent_while_a_group_is_being_created_are_capped() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let dev = w.connect(&k, Intent::CreateGroup { admission_token: None });
    assert!(w.stores.iter().any(|(_, op)| matches!(op, RelayStoreOp::CreateGroup { .. })), "creating");
    w.input(RelayInput::Received { conn: dev.conn, bytes: vec![0; 512] });
    assert!(!w.closed.contains(&dev.conn), "a little is kept for after the handshake");
    w.input(RelayInput::Received { conn: dev.conn, bytes: vec![0; 1024] });
    assert!(w.closed.contains(&dev.conn), "more than a pre-authentication record closes it");
}

/// Issue 14: a pairing session (always admitted) had no lifetime limit.
#[test]
fn a_pairing_connection_lives_no_longer_than_an_invite() {
    let mut w = World::new(RelayLimits::default());
    let pk = NoiseKeypair::generate(&mut w.rng);
    let mut joiner = w.connect(&pk, Intent::Pairing);
    w.frames(&mut joiner);
    w.send(&mut joiner, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    w.frames(&mut joiner);
    let ttl = RelayLimits::default().max_slot_ttl;
    w.now.mono = w.now.mono + ttl - Duration(1);
    w.input(RelayInput::Timeout);
    assert!(!w.closed.contains(&joiner.conn));
    w.now.mono = w.now.mono + Duration(1);
    w.input(RelayInput::Timeout);
    assert!(w.closed.contains(&joiner.conn), "closed at the invite's longest life");
}

/// Issue 14: no cap on concurrent connections.
#[test]
fn one_connection_over_the_cap_is_closed_as_it_arrives() {
    let mut w = World::new(RelayLimits { max_connections: 2, ..RelayLimits::default() });
    for conn in [ConnId(50), ConnId(51)] {
        w.input(RelayInput::Accepted { conn, peer: [1; 32], source: Source::UNKNOWN });
    }
    assert!(w.closed.is_empty());
    w.input(RelayInput::Accepted { conn: ConnId(52), peer: [1; 32], source: Source::UNKNOWN });
    assert_eq!(w.closed, [ConnId(52)]);
    assert!(w.events.contains(&RelayEvent::Rejected { conn: ConnId(52), reason: RejectReason::Full }));
    w.input(RelayInput::Closed { conn: ConnId(50) });
    w.input(RelayInput::Accepted { conn: ConnId(53), peer: [1; 32], source: Source::UNKNOWN });
    assert_eq!(w.closed, [ConnId(52)], "room again once one left");
}

/// Issue 14: the slot-lookup limit was per connection, and connections are free, so a scan of
/// every slot fitted in an invite's life.
#[test]
fn invite_lookups_are_limited_across_connections() {
    let limits = RelayLimits { slot_open_global_burst: 3, slot_open_global_per_sec: 1, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let pk = NoiseKeypair::generate(&mut w.rng);
        let mut scanner = w.connect(&pk, Intent::Pairing);
        w.frames(&mut scanner);
        w.send(&mut scanner, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
        w.frames(&mut scanner);
        w.send(&mut scanner, Frame::SlotOpen(SlotOpen { slot: 7 }));
        answers.push(error_code(&w.frames(&mut scanner)));
    }
    assert_eq!(answers, [None, None, None, Some(ErrorCode::RateLimited)], "each a new connection");
}

/// Issue 14: every group was pruned every minute, for ever.
#[test]
fn retention_runs_only_for_groups_that_store_something() {
    let mut w = World::new(RelayLimits::default());
    let (k1, k2) = (NoiseKeypair::generate(&mut w.rng), NoiseKeypair::generate(&mut w.rng));
    let mut a = w.member(&k1, true);
    w.push(&mut a, 1, 100);
    w.complete_all(RelayStoreResult::Done);
    w.group = GroupId::random(&mut w.rng);
    let _empty = w.member(&k2, true);
    w.stores.clear();
    w.now.mono = w.now.mono + Duration::from_secs(61);
    w.input(RelayInput::Timeout);
    let prunes = w.stores.iter().filter(|(_, op)| matches!(op, RelayStoreOp::Prune { .. })).count();
    assert_eq!(prunes, 1, "the empty group is not pruned");
}

/// Issue 14: nothing bounded the frames of one connection: Pongs and Errors were answered for
/// ever, as fast as a peer could send.
#[test]
fn a_connection_over_its_frame_budget_is_closed() {
    let limits =
        RelayLimits { frame_burst: 5, frame_per_sec: 1, push_burst: 1, push_per_sec: 1, ..RelayLimits::default() };
    let mut w = World::new(limits);
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    // The Hello took one token.
    for nonce in 0..4 {
        w.send(&mut a, Frame::Ping(Ping { nonce }));
    }
    assert_eq!(w.frames(&mut a).len(), 4, "within the burst: every ping answered");
    // Twice the push rate (2 a second) beats the 1 a second asked for.
    w.now.mono = w.now.mono + Duration::from_secs(1);
    w.send(&mut a, Frame::Ping(Ping { nonce: 9 }));
    w.send(&mut a, Frame::Ping(Ping { nonce: 10 }));
    assert!(!w.closed.contains(&a.conn), "refilled after a second");
    w.send(&mut a, Frame::Ping(Ping { nonce: 11 }));
    assert!(w.closed.contains(&a.conn));
    assert!(w.events.contains(&RelayEvent::Rejected { conn: a.conn, reason: RejectReason::Flood }));
}

/// A greeted pairing connection with a fresh key.
fn pairing(w: &mut World) -> Dev {
    let pk = NoiseKeypair::generate(&mut w.rng);
    let mut dev = w.connect(&pk, Intent::Pairing);
    w.frames(&mut dev);
    w.send(&mut dev, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    w.frames(&mut dev);
    dev
}

fn pairing_lookup(w: &mut World, source: Source, slot: u32) -> Option<ErrorCode> {
    w.source = source;
    let mut scanner = pairing(w);
    w.send(&mut scanner, Frame::SlotOpen(SlotOpen { slot }));
    error_code(&w.frames(&mut scanner))
}

/// Issue 14: one address could spend the whole global lookup budget, and every connection
/// brought a fresh per-connection budget.
#[test]
fn invite_lookups_are_limited_per_source_address() {
    let mut w =
        World::new(RelayLimits { slot_open_source_burst: 2, slot_open_source_per_min: 1, ..RelayLimits::default() });
    let (a, b) = (Source([1; 16]), Source([2; 16]));
    let answers: Vec<_> = (0..3).map(|slot| pairing_lookup(&mut w, a, slot)).collect();
    let not_found = None;
    assert_eq!(answers, [not_found, not_found, Some(ErrorCode::RateLimited)]);
    assert_eq!(pairing_lookup(&mut w, b, 3), not_found, "another address has its own budget");
    w.now.mono = w.now.mono + Duration::from_secs(60);
    assert_eq!(pairing_lookup(&mut w, a, 4), not_found, "refilled after a minute");
}

fn create_group(w: &mut World, source: Source) -> ConnId {
    w.source = source;
    w.group = GroupId::random(&mut w.rng);
    let k = NoiseKeypair::generate(&mut w.rng);
    let dev = w.connect(&k, Intent::CreateGroup { admission_token: None });
    w.complete_all(RelayStoreResult::Done);
    dev.conn
}

/// Issue 14: anyone could create unlimited groups, as fast as they could connect.
#[test]
fn group_creations_are_limited_per_source_per_time_and_in_number() {
    let limits = RelayLimits {
        group_create_source_burst: 2,
        group_create_source_per_min: 1,
        group_create_burst: 3,
        group_create_per_min: 1,
        max_groups: 4,
        ..RelayLimits::default()
    };
    let mut w = World::new(limits);
    let (a, b, c) = (Source([1; 16]), Source([2; 16]), Source([3; 16]));
    let limited = |w: &World, conn| w.events.contains(&RelayEvent::Rejected { conn, reason: RejectReason::Limited });
    let first = [create_group(&mut w, a), create_group(&mut w, a)];
    assert!(first.iter().all(|c| !limited(&w, *c)));
    let third = create_group(&mut w, a);
    assert!(limited(&w, third), "over the source's burst");
    let other = create_group(&mut w, b);
    assert!(!limited(&w, other), "another source");
    let global = create_group(&mut w, c);
    assert!(limited(&w, global), "over the global burst");
    w.now.mono = w.now.mono + Duration::from_secs(120);
    let fourth = create_group(&mut w, c);
    assert!(!limited(&w, fourth), "refilled");
    w.now.mono = w.now.mono + Duration::from_secs(120);
    let fifth = create_group(&mut w, b);
    assert!(limited(&w, fifth), "max_groups reached");
    assert_eq!(w.relay.groups.len(), 4);
}

/// Issue 14: no cap on the bytes of all groups together.
#[test]
fn pushes_over_the_relays_total_bytes_are_refused() {
    let mut w = World::new(RelayLimits { max_total_bytes: 1000, ..RelayLimits::default() });
    let (k1, k2) = (NoiseKeypair::generate(&mut w.rng), NoiseKeypair::generate(&mut w.rng));
    let mut a = w.member(&k1, true);
    w.push(&mut a, 1, 600);
    w.complete_all(RelayStoreResult::Done);
    w.group = GroupId::random(&mut w.rng);
    let mut b = w.member(&k2, true);
    w.push(&mut b, 2, 400);
    assert_eq!(w.stores.len(), 1, "exactly at the total, counting the push in flight");
    w.push(&mut b, 3, 1);
    assert_eq!(error_code(&w.frames(&mut b)), Some(ErrorCode::QuotaExceeded));
    w.complete_all(RelayStoreResult::Failed(StoreError::Io));
    w.frames(&mut b);
    w.push(&mut b, 2, 400);
    assert_eq!(w.stores.len(), 1, "a failed append gives its bytes back: its resend fits");
}

/// Issue 14: a full disk stopped the relay; now writes are refused and reads served until
/// the driver says storage takes writes again.
#[test]
fn while_storage_refuses_writes_pushes_and_creations_are_refused_and_pulls_served() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    w.complete_all(RelayStoreResult::Done);
    w.frames(&mut a);
    w.relay.set_refusing_writes(true);
    w.push(&mut a, 2, 100);
    let f = w.frames(&mut a);
    assert!(matches!(f[..], [Frame::Error(ErrorFrame { code: ErrorCode::QuotaExceeded, retry_after_ms: 10_000 })]));
    assert!(w.stores.is_empty());
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Read { .. })]), "reads go on");
    w.stores.clear();
    let creator = create_group(&mut w, Source([5; 16]));
    assert!(w.events.contains(&RelayEvent::Rejected { conn: creator, reason: RejectReason::Limited }));
    w.relay.set_refusing_writes(false);
    w.push(&mut a, 2, 100);
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Append { .. })]), "the resend is stored");
}

/// Issue 14: any member could register every slot of the pairing space.
#[test]
fn a_connection_holds_a_few_slots_at_most() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut squatter = w.member(&k, true);
    let register = |w: &mut World, d: &mut Dev, slot| {
        w.send(d, Frame::SlotRegister(SlotRegister { slot, expires_at_ms: T0 + 60_000 }));
        w.frames(d)
    };
    for slot in 0..slots::MAX_SLOTS_PER_CONN as u32 {
        assert_eq!(register(&mut w, &mut squatter, slot), vec![Frame::SlotRegistered(SlotRegistered { slot })]);
    }
    assert_eq!(error_code(&register(&mut w, &mut squatter, 100)), Some(ErrorCode::QuotaExceeded));
    let again = register(&mut w, &mut squatter, 0);
    assert_eq!(again, vec![Frame::SlotRegistered(SlotRegistered { slot: 0 })], "renewing one it holds");
    w.send(&mut squatter, Frame::SlotClose(SlotClose { slot: 1, reason: SlotCloseReason::Done }));
    w.frames(&mut squatter);
    assert_eq!(register(&mut w, &mut squatter, 100), vec![Frame::SlotRegistered(SlotRegistered { slot: 100 })]);
}

/// Issue 14: one idle attached joiner held an invite for its whole life.
#[test]
fn a_joiner_that_goes_silent_loses_its_attempt_and_the_slot_is_free_again() {
    let mut w = World::new(RelayLimits { max_slot_ttl: Duration::from_secs(600), ..RelayLimits::default() });
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut inviter = w.member(&k, true);
    w.send(&mut inviter, Frame::SlotRegister(SlotRegister { slot: 42, expires_at_ms: T0 + 600_000 }));
    w.frames(&mut inviter);
    let mut joiner = pairing(&mut w);
    w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 42 }));
    assert_eq!(w.frames(&mut inviter), vec![Frame::SlotOpen(SlotOpen { slot: 42 })]);
    assert!(w.relay.poll_timeout().is_some_and(|t| t <= w.now.mono + slots::ATTEMPT_TIMEOUT));
    w.now.mono = w.now.mono + slots::ATTEMPT_TIMEOUT - Duration(1);
    w.input(RelayInput::Timeout);
    assert!(w.frames(&mut inviter).is_empty(), "not before the attempt's time");
    w.now.mono = w.now.mono + Duration(1);
    w.input(RelayInput::Timeout);
    let failed = Frame::SlotClose(SlotClose { slot: 42, reason: SlotCloseReason::Failed });
    assert_eq!(w.frames(&mut inviter), vec![failed.clone()]);
    assert_eq!(w.frames(&mut joiner), vec![failed]);
    let mut next = pairing(&mut w);
    w.send(&mut next, Frame::SlotOpen(SlotOpen { slot: 42 }));
    assert_eq!(w.frames(&mut inviter), vec![Frame::SlotOpen(SlotOpen { slot: 42 })], "the next joiner gets its turn");
}

/// What a joiner sees of a slot: each step of a pairing attempt under `code`, as
/// (reply lengths per message, the inviter key it met, the closing frame).
fn pairing_attempt(
    w: &mut World,
    joiner: &mut Dev,
    code: &crate::invite::ShortCode,
) -> (Vec<usize>, NoisePublic, Frame) {
    use crate::invite::{SpakeExchange, pairing_prologue};
    use crate::noise::{PairingHandshake, PairingRole};
    let slot = code.slot();
    let wait = |w: &mut World, d: &mut Dev| {
        for _ in 0..30 {
            let got = w.frames(d);
            if !got.is_empty() {
                return got;
            }
            w.now.mono = w.now.mono + Duration::from_millis(10);
            w.input(RelayInput::Timeout);
        }
        Vec::new()
    };
    let (spake, m) = SpakeExchange::start(code, &mut w.rng);
    w.send(joiner, Frame::SlotOpen(SlotOpen { slot }));
    w.send(joiner, Frame::SlotMessage(SlotMessage { slot, data: crate::invite::tagged(1, &m) }));
    let mut lengths = Vec::new();
    let reply = |frames: Vec<Frame>| match &frames[..] {
        [Frame::SlotMessage(m)] => m.data.0.clone(),
        other => panic!("{other:?}"),
    };
    let spake_reply = reply(wait(w, joiner));
    lengths.push(spake_reply.len());
    let psk = spake.finish(&spake_reply[1..]).unwrap();
    let key = NoiseKeypair::generate(&mut w.rng);
    let mut hs =
        PairingHandshake::new(&mut w.rng, PairingRole::Joiner, &key, &psk, &pairing_prologue(slot), None).unwrap();
    let m1 = hs.write(&[]).unwrap();
    w.send(joiner, Frame::SlotMessage(SlotMessage { slot, data: crate::invite::tagged(2, &m1) }));
    let m2 = reply(wait(w, joiner));
    lengths.push(m2.len());
    hs.read(&m2[1..]).unwrap();
    let m3 = hs.write(&[0; 64]).unwrap();
    let (_, inviter_key, _) = hs.finish().unwrap();
    w.send(joiner, Frame::SlotMessage(SlotMessage { slot, data: crate::invite::tagged(2, &m3) }));
    let close = wait(w, joiner).pop().expect("the attempt ends");
    (lengths, inviter_key, close)
}

/// Issue 14: a live slot and a missing one answered differently (the live one stayed silent,
/// the missing one said `NotFound` at once), so a scan told which slots held invites.
#[test]
fn a_slot_without_an_invite_answers_like_an_invite_with_another_code() {
    let mut w = World::new(RelayLimits { slot_open_burst: 10, ..RelayLimits::default() });
    let code = crate::invite::ShortCode::from_parts(77, 12_345).unwrap();
    let mut joiner = pairing(&mut w);
    w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 77 }));
    assert!(w.frames(&mut joiner).is_empty(), "no answer to the lookup itself");
    w.send(&mut joiner, Frame::SlotClose(SlotClose { slot: 77, reason: SlotCloseReason::Cancelled }));
    let (lengths, key, close) = pairing_attempt(&mut w, &mut joiner, &code);
    // A real SPAKE2 message (tag + 33 bytes) and a real Noise XX message 2 (tag + 96 bytes).
    assert_eq!(lengths, [34, 97]);
    assert_eq!(close, Frame::SlotClose(SlotClose { slot: 77, reason: SlotCloseReason::Failed }));
    let (_, again, _) = pairing_attempt(&mut w, &mut joiner, &code);
    assert_eq!(key, again, "one inviter key per slot, as a live invite keeps its key");
    let other = crate::invite::ShortCode::from_parts(78, 12_345).unwrap();
    let (_, elsewhere, _) = pairing_attempt(&mut w, &mut joiner, &other);
    assert_ne!(key, elsewhere);
}

#[test]
fn a_decoy_answers_after_a_delay_and_ends_with_the_attempt() {
    let mut w = World::new(RelayLimits::default());
    let mut joiner = pairing(&mut w);
    w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 5 }));
    w.send(&mut joiner, Frame::SlotMessage(SlotMessage { slot: 5, data: Bytes(vec![1; 34]) }));
    assert!(w.frames(&mut joiner).is_empty(), "not at once");
    let due = w.relay.poll_timeout().unwrap();
    assert!(due >= w.now.mono + Duration::from_millis(20) && due <= w.now.mono + Duration::from_millis(250));
    // Garbage is a failed attempt, told after the same kind of delay.
    w.send(&mut joiner, Frame::SlotMessage(SlotMessage { slot: 5, data: Bytes(vec![7]) }));
    w.now.mono = w.now.mono + Duration::from_millis(600);
    w.input(RelayInput::Timeout);
    let got = w.frames(&mut joiner);
    assert!(matches!(got.last(), Some(Frame::SlotClose(SlotClose { slot: 5, reason: SlotCloseReason::Failed }))));
    // A silent one fails at the attempt's end.
    w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 6 }));
    w.now.mono = w.now.mono + slots::ATTEMPT_TIMEOUT;
    w.input(RelayInput::Timeout);
    assert_eq!(w.frames(&mut joiner), vec![Frame::SlotClose(SlotClose { slot: 6, reason: SlotCloseReason::Failed })]);
}

/// Joiner attachments count against the per-connection slot cap, live and decoy alike.
#[test]
fn a_pairing_connection_attaches_to_a_few_slots_at_most() {
    let mut w = World::new(RelayLimits { slot_open_burst: 10, ..RelayLimits::default() });
    let mut joiner = pairing(&mut w);
    for slot in 0..slots::MAX_SLOTS_PER_CONN as u32 {
        w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot }));
        assert!(w.frames(&mut joiner).is_empty());
    }
    w.send(&mut joiner, Frame::SlotOpen(SlotOpen { slot: 99 }));
    assert_eq!(error_code(&w.frames(&mut joiner)), Some(ErrorCode::QuotaExceeded));
}

/// Issue 14: every input scanned every slot and connection for the next deadline; the heap that
/// replaces the scans must not grow without bound from deadlines that went stale.
#[test]
fn stale_deadlines_do_not_pile_up() {
    let mut w = World::new(RelayLimits { frame_burst: 100_000, ..RelayLimits::default() });
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut inviter = w.member(&k, true);
    for i in 0..20_000u64 {
        w.send(&mut inviter, Frame::SlotRegister(SlotRegister { slot: 1, expires_at_ms: T0 + 60_000 + i }));
    }
    w.frames(&mut inviter);
    assert!(w.relay.deadlines.len() < 2_000, "{} deadlines for one slot", w.relay.deadlines.len());
    // The slot still expires at its last expiry, not before.
    w.now.mono = w.now.mono + Duration::from_millis(60_000 + 19_998);
    w.now.unix_ms += 60_000 + 19_998;
    w.input(RelayInput::Timeout);
    assert!(w.frames(&mut inviter).is_empty());
    w.now.mono = w.now.mono + Duration::from_millis(2);
    w.input(RelayInput::Timeout);
    assert_eq!(w.frames(&mut inviter), vec![Frame::SlotClose(SlotClose { slot: 1, reason: SlotCloseReason::Expired })]);
}

/// Relays over one database: a key another relay admitted is admitted here once the store says
/// so, the welcome carries the store's head, and a hint of another relay's append reaches the
/// devices online here; a lookup the store cannot answer closes the connection.
#[test]
fn over_a_shared_store_the_store_admits_and_tells_the_head() {
    let mut w = World::new(RelayLimits::default());
    w.relay.config.shared_store = true;
    let k = NoiseKeypair::generate(&mut w.rng);
    let group = *w.group.expose();
    let snapshot = |head: u64| GroupSnapshot {
        group_id: group,
        keys: vec![k.public().0],
        head,
        chain: Some([head as u8; 32]),
        earliest: 1,
        bytes: 0,
        blobs: head,
        acked: Vec::new(),
        recent: Vec::new(),
    };
    let mut a = w.connect(&k, Intent::Member);
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::LoadGroup { .. })]), "{:?}", w.stores);
    w.complete_all(RelayStoreResult::Group(Some(snapshot(7))));
    assert!(w.frames(&mut a).is_empty());
    w.send(&mut a, Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 7 }));
    let welcome = w.frames(&mut a);
    assert!(matches!(&welcome[..], [Frame::Welcome(Welcome { head: 7, .. })]), "{welcome:?}");
    w.stores.clear();
    w.input(RelayInput::GroupChanged { group });
    w.input(RelayInput::GroupChanged { group });
    assert_eq!(w.stores.len(), 1, "one read in flight per group");
    w.complete_all(RelayStoreResult::Group(Some(snapshot(9))));
    assert_eq!(w.frames(&mut a), vec![Frame::Notify(Notify { cursor: 9 })]);
    let b = w.connect(&k, Intent::Member);
    w.complete_all(RelayStoreResult::Failed(StoreError::Io));
    assert!(w.closed.contains(&b.conn), "not admitted on what this relay last knew");
}

/// A push refused here for a store failure but stored through another relay (its answer lost
/// with that relay): the device sees it in the log and never sends it again, so it must not
/// hold the connection's later pushes back for ever.
#[test]
fn a_refused_push_seen_stored_in_a_page_holds_nothing_back() {
    let mut w = World::new(RelayLimits::default());
    let k = NoiseKeypair::generate(&mut w.rng);
    let mut a = w.member(&k, true);
    w.push(&mut a, 1, 100);
    w.complete_all(RelayStoreResult::Failed(StoreError::Io));
    w.frames(&mut a);
    w.push(&mut a, 2, 100);
    assert!(w.stores.is_empty(), "2 waits for 1's resend");
    w.frames(&mut a);
    w.relay.groups.get_mut(w.group.expose()).unwrap().head = 1;
    w.send(&mut a, Frame::Pull(Pull { after: 0, limit: 10 }));
    let blob = StoredBlob { cursor: 1, push_id: [1; 16], stored_at_ms: 0, envelope: Bytes(vec![1]), chain: [1; 32] };
    w.complete_all(RelayStoreResult::Blobs { prev_chain: None, blobs: vec![blob], more: false });
    w.frames(&mut a);
    w.push(&mut a, 2, 100);
    assert!(matches!(&w.stores[..], [(_, RelayStoreOp::Append { push_id: [2, ..], .. })]), "{:?}", w.stores);
}
