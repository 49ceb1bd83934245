//! Client unit tests: a client wired directly to a real relay state machine, with store
//! operations completed (or held, or failed) by the test.

use super::*;
use crate::keys::NoiseKeypair;
use crate::relay::{Relay, RelayConfig, RelayInput, RelayOutput, RelayStoreOp, RelayStoreResult};

const T0: u64 = 1_700_000_000_000;

struct Rig {
    now: Now,
    client: Client,
    relay: Relay,
    relay_store: std::collections::BTreeMap<u64, crate::wire::StoredBlob>,
    groups: Vec<[u8; 32]>,
    online: bool,
    conn: Option<ConnId>,
    held: Vec<(OpId, ClientStoreOp)>,
    hold_client_store: bool,
    fail_client_store: bool,
    relay_held: Option<Vec<(OpId, RelayStoreOp)>>,
    /// The relay is gone without a word: what the client sends is lost.
    black_hole: bool,
    log: Vec<ClientOutput>,
    events: Vec<ClientEvent>,
}

impl Rig {
    fn new() -> Self {
        Self::with_config(|_| {})
    }

    fn with_config(adjust: impl FnOnce(&mut ClientConfig)) -> Self {
        Self::with(adjust, |_| {})
    }

    fn with(adjust: impl FnOnce(&mut ClientConfig), adjust_relay: impl FnOnce(&mut RelayConfig)) -> Self {
        let mut rng = CoreRng::from_seed([5; 32]);
        let relay_key = NoiseKeypair::generate(&mut rng);
        let info = RelayInfo { endpoint_id: [1; 32], noise_key: relay_key.public(), addrs: vec!["relay".into()] };
        let now = Now::new(1_000_000, T0);
        let mut config = ClientConfig::new(DeviceSigningKey::generate(&mut rng), [2; 32], info);
        adjust(&mut config);
        let mut relay_config = RelayConfig::new([1; 32], relay_key);
        adjust_relay(&mut relay_config);
        Rig {
            now,
            client: Client::new(config, ClientState::default(), [6; 32], now),
            relay: Relay::new(relay_config, [7; 32], now, Vec::new()),
            relay_store: Default::default(),
            groups: Vec::new(),
            online: true,
            conn: None,
            held: Vec::new(),
            hold_client_store: false,
            fail_client_store: false,
            relay_held: None,
            black_hole: false,
            log: Vec::new(),
            events: Vec::new(),
        }
    }

    fn cmd(&mut self, c: Command) -> Result<Option<[u8; 16]>, CommandError> {
        let r = self.client.command(self.now, c);
        self.pump();
        r
    }

    fn input(&mut self, i: ClientInput) {
        self.client.handle_input(self.now, i);
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        self.now = Now::new(self.now.mono.0 + d.as_micros(), self.now.unix_ms + d.as_millis());
        self.input(ClientInput::Timeout);
        self.relay.handle_input(self.now, RelayInput::Timeout);
        self.pump();
    }

    /// Runs both machines until neither has anything to do.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            loop {
                let out = self.client.poll_output();
                match out.clone() {
                    ClientOutput::Timeout(_) => break,
                    ClientOutput::Connect { conn, .. } => {
                        busy = true;
                        if self.online {
                            self.conn = Some(conn);
                            self.relay.handle_input(
                                self.now,
                                RelayInput::Accepted { conn, peer: [2; 32], source: crate::relay::Source::UNKNOWN },
                            );
                            self.client.handle_input(self.now, ClientInput::Connected { conn });
                        } else {
                            self.client.handle_input(self.now, ClientInput::Disconnected { conn });
                        }
                    }
                    ClientOutput::Transmit { conn, bytes } => {
                        busy = true;
                        if self.black_hole {
                            continue;
                        }
                        self.relay.handle_input(self.now, RelayInput::Received { conn, bytes });
                    }
                    ClientOutput::Close { conn } => {
                        busy = true;
                        self.conn = None;
                        self.relay.handle_input(self.now, RelayInput::Closed { conn });
                    }
                    ClientOutput::Store { op, request } => {
                        busy = true;
                        if self.hold_client_store {
                            self.held.push((op, request));
                        } else {
                            let result = if self.fail_client_store { Err(StoreError::Full) } else { Ok(()) };
                            self.client.handle_input(self.now, ClientInput::StoreDone { op, result });
                        }
                    }
                    ClientOutput::Event(e) => self.events.push(e),
                }
                self.log.push(out);
            }
            loop {
                match self.relay.poll_output() {
                    RelayOutput::Timeout(_) => break,
                    RelayOutput::Transmit { conn, bytes } => {
                        busy = true;
                        self.client.handle_input(self.now, ClientInput::Received { conn, bytes });
                    }
                    RelayOutput::Close { conn } => {
                        busy = true;
                        self.client.handle_input(self.now, ClientInput::Disconnected { conn });
                    }
                    RelayOutput::Store { op, request } => {
                        busy = true;
                        if let Some(held) = &mut self.relay_held {
                            held.push((op, request));
                            continue;
                        }
                        let result = self.apply_relay(&request);
                        self.relay.handle_input(self.now, RelayInput::StoreDone { op, result });
                    }
                    RelayOutput::Event(_) => {}
                }
            }
            if !busy {
                return;
            }
        }
        panic!("machines never went quiet");
    }

    fn apply_relay(&mut self, op: &RelayStoreOp) -> RelayStoreResult {
        match op {
            RelayStoreOp::CreateGroup { group_id, .. } => {
                self.groups.push(*group_id);
                RelayStoreResult::Done
            }
            RelayStoreOp::Append { group_id, push_id, stored_at_ms, envelope, .. } => {
                let head = self.relay_store.last_key_value().map(|(c, b)| (*c, b.chain));
                let (cursor, chain) = head.map_or((0, None), |(c, chain)| (c, Some(chain)));
                let blob = crate::relay::next_blob(group_id, cursor, chain, *push_id, *stored_at_ms, envelope.clone());
                let (cursor, chain) = (blob.cursor, blob.chain);
                self.relay_store.insert(cursor, blob);
                RelayStoreResult::Stored { cursor, chain }
            }
            RelayStoreOp::Read { after, up_to, limit, .. } => {
                let mut blobs: Vec<_> = self
                    .relay_store
                    .range(after + 1..=*up_to)
                    .take(*limit as usize + 1)
                    .map(|(_, b)| b.clone())
                    .collect();
                let more = blobs.len() > *limit as usize;
                blobs.truncate(*limit as usize);
                RelayStoreResult::Blobs {
                    prev_chain: self.relay_store.range(..=*after).next_back().map(|(_, b)| b.chain),
                    blobs,
                    more,
                }
            }
            _ => RelayStoreResult::Done,
        }
    }

    /// Commits the relay's held store operations; returns how many blobs they appended.
    fn release_relay(&mut self) -> usize {
        let held = self.relay_held.as_mut().map(std::mem::take).unwrap_or_default();
        let appended = held.iter().filter(|(_, op)| matches!(op, RelayStoreOp::Append { .. })).count();
        for (op, request) in held {
            let result = self.apply_relay(&request);
            self.relay.handle_input(self.now, RelayInput::StoreDone { op, result });
        }
        self.pump();
        appended
    }

    /// Completes the relay's held store operations (and those they cause), failing those
    /// `fail` picks.
    fn settle_relay(&mut self, fail: impl Fn(&RelayStoreOp) -> bool) {
        let held = self.relay_held.as_mut().map(std::mem::take).unwrap_or_default();
        for (op, request) in held {
            let result =
                if fail(&request) { RelayStoreResult::Failed(StoreError::Io) } else { self.apply_relay(&request) };
            self.relay.handle_input(self.now, RelayInput::StoreDone { op, result });
        }
        self.pump();
    }

    fn statuses(&self) -> Vec<SyncStatus> {
        self.events.iter().filter_map(|e| if let ClientEvent::Status(s) = e { Some(*s) } else { None }).collect()
    }
}

#[test]
fn create_group_then_push_is_acknowledged_and_synced() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.client.status(), SyncStatus::Synced);
    let id = r.cmd(Command::Push(b"hello".to_vec())).unwrap().unwrap();
    assert!(r.events.contains(&ClientEvent::PushAcked { push_id: id, cursor: 1 }));
    assert_eq!(r.client.unsent(), 0);
    assert_eq!(r.client.status(), SyncStatus::Synced);
    assert!(r.statuses().contains(&SyncStatus::Pending), "pending while the push was in flight");
    assert_eq!(r.cmd(Command::CreateGroup { admission_token: None }), Err(CommandError::AlreadyInGroup));
}

#[test]
fn a_reconnected_device_is_synced_only_once_the_relay_answered_its_pull() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.cmd(Command::Push(b"hello".to_vec())).unwrap();
    r.cmd(Command::SyncNow).unwrap();
    assert_eq!(r.client.cursor(), 1);
    let conn = r.conn.unwrap();
    r.input(ClientInput::Disconnected { conn });
    r.events.clear();
    r.advance(Duration::from_secs(120));
    assert!(r.events.iter().any(|e| matches!(e, ClientEvent::Connected { head: 1 })));
    // The Welcome's head equals the saved cursor, but the page that checks the relay's log
    // (a rewritten one would be found there) comes after it.
    let statuses = r.statuses();
    assert_eq!(statuses.last(), Some(&SyncStatus::Synced));
    assert_eq!(statuses.get(statuses.len().wrapping_sub(2)), Some(&SyncStatus::Pending), "{statuses:?}");
}

#[test]
fn pushes_in_flight_are_bounded_by_count_and_by_bytes() {
    let mut r = Rig::with_config(|c| c.push_window = 3);
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.relay_held = Some(Vec::new());
    for i in 0..8u8 {
        r.cmd(Command::Push(vec![i; 100])).unwrap();
    }
    assert_eq!(r.release_relay(), 3, "three in flight until acknowledged");
    assert_eq!(r.release_relay(), 3);
    assert_eq!(r.release_relay(), 2);
    assert_eq!(r.client.unsent(), 0);

    let mut r = Rig::with_config(|c| c.push_window_bytes = 2_500);
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.relay_held = Some(Vec::new());
    for i in 0..3u8 {
        r.cmd(Command::Push(vec![i; 1_000])).unwrap();
    }
    r.cmd(Command::Push(vec![9; 10_000])).unwrap();
    assert_eq!(r.release_relay(), 2, "two 1,000-byte blobs fit in 2,500 bytes, three do not");
    assert_eq!(r.release_relay(), 1, "the third waits for the bytes before it");
    assert_eq!(r.release_relay(), 1, "a blob larger than the whole window still goes, alone");
    assert_eq!(r.client.unsent(), 0);
}

#[test]
fn a_rate_limited_burst_narrows_the_window_and_backs_off_once() {
    let mut r = Rig::with(
        |_| {},
        |relay| {
            relay.limits.push_burst = 4;
            relay.limits.push_per_sec = 2;
        },
    );
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.relay_held = Some(Vec::new());
    for i in 0..40u8 {
        r.cmd(Command::Push(vec![i; 100])).unwrap();
    }
    let refused = |r: &Rig| r.events.iter().filter(|e| matches!(e, ClientEvent::RelayError { .. })).count();
    assert_eq!(refused(&r), 1, "after the first refusal nothing more is pushed until the retry");
    assert_eq!(r.release_relay(), 4, "the relay stored its burst");
    // The retry sends a narrowed window (half of the 5 in flight, plus one per late ack), not
    // the 36 waiting.
    r.log.clear();
    let mut waited = Duration::ZERO;
    while !r.log.iter().any(|o| matches!(o, ClientOutput::Transmit { .. })) {
        r.advance(Duration::from_millis(100));
        waited = waited + Duration::from_millis(100);
    }
    let sent = r.log.iter().filter(|o| matches!(o, ClientOutput::Transmit { .. })).count();
    assert!(sent <= 7, "{sent} records sent on the retry (at most 6 pushes and a pull)");
    assert!(waited <= Duration::from_secs(2), "one backoff step for the whole burst, waited {waited:?}");
    r.release_relay();
    r.relay_held = None;
    // At 2 pushes/s the rest is stored in about 18 s; a backoff stepped once per refusal, or
    // never reset by acknowledgements, would take minutes.
    while r.client.unsent() > 0 {
        assert!(waited < Duration::from_secs(40), "still {} unsent after {waited:?}", r.client.unsent());
        r.advance(Duration::from_millis(100));
        waited = waited + Duration::from_millis(100);
    }
}

#[test]
fn a_relay_gone_silent_is_noticed_and_a_quiet_one_is_kept() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let lost = |r: &Rig| {
        r.events.iter().filter(|e| matches!(e, ClientEvent::Disconnected { reason: DisconnectReason::Lost })).count()
    };
    // Quiet but alive: pings are answered and the connection stays for a minute.
    for _ in 0..60 {
        r.advance(Duration::from_secs(1));
    }
    assert_eq!(lost(&r), 0);
    assert!(r.log.iter().filter(|o| matches!(o, ClientOutput::Transmit { .. })).count() >= 5, "pinged");
    // The relay vanishes without closing: a push goes unanswered and the client gives up on
    // the connection after the response timeout, not after the transport's idle timeout.
    r.black_hole = true;
    r.cmd(Command::Push(b"into the void".to_vec())).unwrap();
    r.advance(Duration::from_secs(9));
    assert_eq!(lost(&r), 0, "still within the response timeout");
    r.advance(Duration::from_secs(2));
    assert_eq!(lost(&r), 1, "an unanswered push drops the connection");
    // Back again: the push goes through on the next connection.
    r.black_hole = false;
    for _ in 0..5 {
        r.advance(Duration::from_secs(1));
    }
    assert_eq!(r.client.unsent(), 0);
    // A quiet connection to a relay that vanished is noticed by its unanswered ping.
    r.black_hole = true;
    let before = lost(&r);
    for _ in 0..25 {
        r.advance(Duration::from_secs(1));
    }
    assert_eq!(lost(&r), before + 1, "ping interval plus response timeout");
}

#[test]
fn the_outbox_entry_is_durable_before_the_first_transmit() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.log.clear();
    r.hold_client_store = true;
    r.cmd(Command::Push(vec![1; 10])).unwrap();
    assert!(matches!(r.held[..], [(_, ClientStoreOp::AppendOutbox { .. })]));
    assert!(!r.log.iter().any(|o| matches!(o, ClientOutput::Transmit { .. })), "nothing sent before durable");
    let (op, _) = r.held.remove(0);
    r.hold_client_store = false;
    r.input(ClientInput::StoreDone { op, result: Ok(()) });
    assert!(r.log.iter().any(|o| matches!(o, ClientOutput::Transmit { .. })));
    assert_eq!(r.client.unsent(), 0);
}

#[test]
fn push_works_offline_and_syncs_on_the_next_launch_with_the_same_bytes() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.online = false;
    r.cmd(Command::Pause { flush_for: Duration::from_millis(500) }).unwrap();
    r.cmd(Command::Push(b"offline".to_vec())).unwrap();
    let queued: Vec<Vec<u8>> = r
        .log
        .iter()
        .filter_map(|o| match o {
            ClientOutput::Store { request: ClientStoreOp::AppendOutbox { entries, .. }, .. } => {
                Some(entries[0].envelope.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(r.client.status(), SyncStatus::Pending, "will sync on next launch");
    r.cmd(Command::Launch).unwrap();
    assert_eq!(r.client.status(), SyncStatus::Offline, "relay unreachable: saved locally");
    r.online = true;
    r.advance(Duration::from_secs(10));
    assert_eq!(r.client.status(), SyncStatus::Synced);
    assert_eq!(r.relay_store.get(&1).map(|b| b.envelope.0.clone()), Some(queued[0].clone()), "same bytes");
}

#[test]
fn a_failed_outbox_write_gives_the_sequence_number_back() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.fail_client_store = true;
    let lost = r.cmd(Command::Push(vec![1])).unwrap().unwrap();
    assert!(r.events.contains(&ClientEvent::PushFailed { push_id: lost, error: StoreError::Full }));
    assert_eq!(r.client.unsent(), 0);
    r.fail_client_store = false;
    r.cmd(Command::Push(vec![2])).unwrap();
    let seqs: Vec<u64> = r
        .log
        .iter()
        .filter_map(|o| match o {
            ClientOutput::Store { request: ClientStoreOp::AppendOutbox { entries, .. }, .. } => Some(entries[0].seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 1], "the failed write's seq is reused, no gap in the chain");
}

#[test]
fn pause_flushes_within_the_deadline_then_disconnects_without_blocking() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.hold_client_store = true;
    r.cmd(Command::Push(vec![3; 100])).unwrap();
    r.cmd(Command::Pause { flush_for: Duration::from_millis(500) }).unwrap();
    assert_eq!(r.client.status(), SyncStatus::Pending);
    r.advance(Duration::from_millis(499));
    assert!(r.conn.is_some(), "still flushing");
    r.advance(Duration::from_millis(1));
    assert!(r.conn.is_none(), "disconnected at the deadline");
    assert_eq!(r.client.status(), SyncStatus::Pending);
}

#[test]
fn reconnects_back_off_exponentially_with_jitter() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    r.online = false;
    if let Some(conn) = r.conn {
        r.input(ClientInput::Disconnected { conn });
    }
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let before = r.now.mono;
        let deadline = r.client.poll_timeout().unwrap();
        gaps.push(deadline.saturating_since(before).as_millis());
        r.advance(deadline.saturating_since(r.now.mono));
    }
    assert!(gaps.windows(2).all(|w| w[1] as f64 >= w[0] as f64 * 0.9), "{gaps:?}");
    assert!(gaps[5] > gaps[0] * 4, "{gaps:?}");
    assert_eq!(r.client.status(), SyncStatus::Offline);
}

#[test]
fn blobs_from_another_device_are_delivered_and_acked() {
    let mut a = Rig::new();
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    a.cmd(Command::Push(b"one".to_vec())).unwrap();
    a.cmd(Command::Push(b"two".to_vec())).unwrap();
    // A second device with the same membership and its own signing key reads them.
    let membership = a.client.membership().cloned().unwrap();
    let mut rng = CoreRng::from_seed([9; 32]);
    let mut config = a.client.config.clone();
    config.device = DeviceSigningKey::generate(&mut rng);
    let state = ClientState { membership: Some(membership), ..ClientState::default() };
    a.now = Now::new(a.now.mono.0 + 1_000_000, a.now.unix_ms + 1_000);
    a.client = Client::new(config, state, [10; 32], a.now);
    a.events.clear();
    a.log.clear();
    a.cmd(Command::Launch).unwrap();
    let delivered: Vec<Vec<u8>> = a
        .log
        .iter()
        .filter_map(|o| match o {
            ClientOutput::Store { request: ClientStoreOp::Deliver { blobs, .. }, .. } => Some(blobs.clone()),
            _ => None,
        })
        .flatten()
        .map(|b| b.payload)
        .collect();
    assert_eq!(delivered, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(a.client.cursor(), 2);
    assert_eq!(a.client.status(), SyncStatus::Synced);
}

/// Regression (the SIGKILL test): the relay does not say which request an error answers, and
/// an error during the backoff of an earlier one was ignored whole. When it answered a pull,
/// the device waited for that page for ever and never pulled again.
#[test]
fn a_failed_pull_during_a_push_backoff_is_pulled_again() {
    let mut a = Rig::with_config(|c| c.pull_page = 1);
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    a.cmd(Command::Push(b"one".to_vec())).unwrap();
    a.cmd(Command::Push(b"two".to_vec())).unwrap();
    // A second device of the group pushes while its first pull is held.
    let membership = a.client.membership().cloned().unwrap();
    let mut config = a.client.config.clone();
    config.device = DeviceSigningKey::generate(&mut CoreRng::from_seed([9; 32]));
    let state = ClientState { membership: Some(membership), ..ClientState::default() };
    if let Some(conn) = a.conn.take() {
        a.relay.handle_input(a.now, RelayInput::Closed { conn });
    }
    a.now = Now::new(a.now.mono.0 + 1_000_000, a.now.unix_ms + 1_000);
    a.client = Client::new(config, state, [10; 32], a.now);
    a.cmd(Command::Push(b"three".to_vec())).unwrap();
    a.relay_held = Some(Vec::new());
    a.cmd(Command::Launch).unwrap();
    // The push fails (the device backs off); the first page comes, and the next pull, made
    // during the backoff, fails too.
    a.settle_relay(|op| matches!(op, RelayStoreOp::Append { .. }));
    a.settle_relay(|op| matches!(op, RelayStoreOp::Read { after: 1, .. }));
    a.relay_held = None;
    for _ in 0..10 {
        a.advance(Duration::from_millis(200));
    }
    assert_eq!(a.client.unsent(), 0, "the push went through on the retry");
    assert_eq!(a.client.cursor(), 2, "and the failed pull was made again");
    assert_eq!(a.client.status(), SyncStatus::Synced);
}

#[test]
fn app_misuse_is_an_error_not_a_panic() {
    let mut r = Rig::new();
    assert_eq!(r.cmd(Command::Push(vec![1])), Err(CommandError::NotInGroup));
    assert_eq!(r.cmd(Command::CreateInvite), Err(CommandError::NotInGroup));
    assert!(matches!(r.cmd(Command::JoinInvite("nope".into())), Err(CommandError::Invite(_))));
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let big = vec![0; crate::envelope::MAX_PAYLOAD + 1];
    assert_eq!(r.cmd(Command::Push(big)), Err(CommandError::TooLarge(crate::envelope::MAX_PAYLOAD + 1)));
    assert_eq!(r.cmd(Command::JoinInvite("0000-0000-0000-0000".into())), Err(CommandError::AlreadyInGroup));
}

#[test]
fn garbage_from_the_network_closes_the_connection_and_reconnects() {
    let mut r = Rig::new();
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let conn = r.conn.unwrap();
    let mut garbage = vec![0x00, 0x20];
    garbage.extend_from_slice(&[0xFF; 32]);
    r.input(ClientInput::Received { conn, bytes: garbage });
    assert!(r.events.iter().any(|e| matches!(e, ClientEvent::Disconnected { reason: DisconnectReason::Lost })));
    r.advance(Duration::from_secs(2));
    assert_eq!(r.client.status(), SyncStatus::Synced, "reconnected");
}

/// Regression (simulation seed 2422): blobs sealed for a group whose membership was never
/// saved were later pushed into another group, undecryptable, blocking that sender's chain.
#[test]
fn nothing_is_sealed_for_a_group_that_is_not_durable_yet() {
    let mut r = Rig::new();
    r.hold_client_store = true;
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    assert_eq!(r.cmd(Command::Push(vec![1])), Err(CommandError::NotInGroup));
    assert_eq!(r.cmd(Command::CreateGroup { admission_token: None }), Err(CommandError::AlreadyInGroup));
    let (op, _) = r.held.remove(0);
    r.hold_client_store = false;
    r.input(ClientInput::StoreDone { op, result: Err(StoreError::Full) });
    assert!(r.client.membership().is_none(), "a failed save leaves no group behind");
    r.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    assert!(r.client.membership().is_some());
    assert!(r.cmd(Command::Push(vec![1])).unwrap().is_some());
}

/// Regression (the SIGKILL test, ARCHITECTURE "What the simulator found" 8): when the gap
/// buffer overflowed, the durable cursor moved past the blob that did not fit, and the device
/// never received it. Here a dishonest (or broken) relay serves one sender's blobs 2, 3, 4, 1
/// with a consistent log chain, to a device whose gap buffer holds two.
#[test]
fn a_full_gap_buffer_fetches_again_below_what_it_dropped() {
    use crate::wire::Blobs;

    let mut a = Rig::new();
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let mut rng = CoreRng::from_seed([3; 32]);
    let (_, m, log) = foreign_log(&a, &mut rng, 4, &[2, 3, 4, 1]);
    let page = |after: u64| Blobs {
        after,
        prev_chain: if after == 0 { crate::log::genesis(m.group_id.expose()) } else { log[after as usize - 1].chain },
        blobs: log[after as usize..].to_vec(),
        has_more: false,
        max_cursor: 4,
    };

    // A second device of the group, with a gap buffer of two; what it sends goes nowhere.
    let mut config = a.client.config.clone();
    config.device = DeviceSigningKey::generate(&mut rng);
    config.gap_blobs = 2;
    let state = ClientState { membership: Some(m.clone()), ..ClientState::default() };
    a.client = Client::new(config, state, [10; 32], a.now);
    a.black_hole = true;
    a.events.clear();
    for _ in 0..3 {
        let after = a.client.fetch_pos;
        a.client.pulling = true;
        a.client.on_blobs(page(after));
        a.pump();
        if a.client.cursor() == 4 {
            break;
        }
    }
    assert_eq!(delivered_seqs(&a), vec![1, 2, 3, 4], "every blob once, in the sender's order");
    assert_eq!(a.client.cursor(), 4);
}

#[test]
fn a_gap_nobody_fills_is_given_up_after_the_patience_and_its_sender_goes_on() {
    use crate::wire::Blobs;

    let mut a = Rig::new();
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let mut rng = CoreRng::from_seed([3; 32]);
    // The relay withholds the sender's first blob; its second and third are at cursors 1, 2.
    let (sender, m, blobs) = foreign_log(&a, &mut rng, 3, &[2, 3]);
    let genesis = crate::log::genesis(m.group_id.expose());
    let mut config = a.client.config.clone();
    config.device = DeviceSigningKey::generate(&mut rng);
    config.gap_patience = Duration::from_secs(60);
    let state = ClientState { membership: Some(m.clone()), ..ClientState::default() };
    a.client = Client::new(config, state, [10; 32], a.now);
    a.black_hole = true;
    a.events.clear();
    a.client.pulling = true;
    a.client.on_blobs(Blobs { after: 0, prev_chain: genesis, blobs, has_more: false, max_cursor: 2 });
    a.pump();
    assert!(a.events.iter().any(|e| matches!(e, ClientEvent::Withheld { missing_seq: 1, .. })), "{:?}", a.events);
    assert!(delivered_seqs(&a).is_empty(), "blobs 2 and 3 wait for blob 1");
    a.advance(Duration::from_secs(30));
    assert!(!a.events.iter().any(|e| matches!(e, ClientEvent::BlobsLost { .. })), "still within the patience");
    a.advance(Duration::from_secs(31));
    let lost: Vec<_> = a.events.iter().filter(|e| matches!(e, ClientEvent::BlobsLost { .. })).collect();
    assert_eq!(lost, [&ClientEvent::BlobsLost { sender: sender.device_id(), from_seq: 1, to_seq: 1 }]);
    assert_eq!(delivered_seqs(&a), vec![2, 3], "the sender's later blobs apply, in order");
    assert_eq!(a.client.cursor(), 2);
}

/// Another device of `a`'s group (its key from `rng`) seals blobs 1..=n, and a relay log holds
/// those of `order` (by sequence number) at cursors 1, 2, ... with a consistent chain.
fn foreign_log(
    a: &Rig,
    rng: &mut CoreRng,
    n: u64,
    order: &[u64],
) -> (DeviceSigningKey, Membership, Vec<crate::wire::StoredBlob>) {
    use crate::envelope::{BlobCipher, BlobKind, ChainLink};
    use crate::wire::{Bytes, StoredBlob};

    let m = a.client.membership().cloned().unwrap();
    let sender = DeviceSigningKey::generate(rng);
    let cipher = BlobCipher::new(&m.group_id, m.epoch, &m.epoch_secret);
    let mut prev_hash = [0; 32];
    let mut sealed = Vec::new();
    for seq in 1..=n {
        let s = cipher.seal(&sender, ChainLink { seq, prev_hash }, BlobKind::Data, &[seq as u8], rng).unwrap();
        prev_hash = s.hash;
        sealed.push(s.envelope);
    }
    let mut chain = crate::log::genesis(m.group_id.expose());
    let mut log = Vec::new();
    for (i, seq) in order.iter().enumerate() {
        let mut b = StoredBlob {
            cursor: i as u64 + 1,
            push_id: [*seq as u8; 16],
            stored_at_ms: 0,
            envelope: Bytes(sealed[*seq as usize - 1].clone()),
            chain: [0; 32],
        };
        b.chain = crate::log::link(&chain, &b);
        chain = b.chain;
        log.push(b);
    }
    (sender, m, log)
}

/// The push ids (here: sequence numbers) of the blobs delivered to the app, in order.
fn delivered_seqs(a: &Rig) -> Vec<u64> {
    a.events
        .iter()
        .filter_map(
            |e| if let ClientEvent::BlobAvailable { push_id, .. } = e { Some(u64::from(push_id[0])) } else { None },
        )
        .collect()
}

#[test]
fn a_full_gap_buffer_reads_on_to_the_head_and_reads_what_it_dropped_once_the_gap_is_given_up() {
    use crate::wire::Blobs;

    let mut a = Rig::new();
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    let mut rng = CoreRng::from_seed([3; 32]);
    // Blob 1 is missing and more blobs follow the hole than the gap buffer (two) holds.
    let (sender, m, log) = foreign_log(&a, &mut rng, 5, &[2, 3, 4, 5]);
    let genesis = crate::log::genesis(m.group_id.expose());
    let mut config = a.client.config.clone();
    config.device = DeviceSigningKey::generate(&mut rng);
    config.gap_blobs = 2;
    config.gap_patience = Duration::from_secs(60);
    let state = ClientState { membership: Some(m.clone()), ..ClientState::default() };
    a.client = Client::new(config, state, [10; 32], a.now);
    a.black_hole = true;
    a.events.clear();
    a.client.pulling = true;
    a.client.on_blobs(Blobs { after: 0, prev_chain: genesis, blobs: log.clone(), has_more: false, max_cursor: 4 });
    a.pump();
    assert_eq!(a.client.fetch_pos, 4, "read on to the head, past what did not fit");
    assert_eq!(a.client.cursor(), 0, "the durable cursor stays below the gap");
    assert!(a.events.iter().any(|e| matches!(e, ClientEvent::Withheld { missing_seq: 1, .. })));
    a.advance(Duration::from_secs(61));
    assert!(a.events.contains(&ClientEvent::BlobsLost { sender: sender.device_id(), from_seq: 1, to_seq: 1 }));
    assert_eq!(delivered_seqs(&a), vec![2, 3]);
    assert_eq!(a.client.fetch_pos, 2, "and reads again what the full buffer dropped");
    a.client.pulling = true;
    let again = Blobs { after: 2, prev_chain: log[1].chain, blobs: log[2..].to_vec(), has_more: false, max_cursor: 4 };
    a.client.on_blobs(again);
    a.pump();
    assert_eq!(delivered_seqs(&a), vec![2, 3, 4, 5], "every blob once, in the sender's order");
    assert_eq!(a.client.cursor(), 4);
}

/// Issue 14: an inviter whose slot was taken tried another code at once, for ever.
#[test]
fn an_inviter_gives_up_after_slot_after_slot_is_taken() {
    let mut a = Rig::new();
    a.cmd(Command::CreateGroup { admission_token: None }).unwrap();
    a.black_hole = true;
    a.cmd(Command::CreateInvite).unwrap();
    a.events.clear();
    for _ in 0..8 {
        a.client.on_relay_error(crate::wire::ErrorCode::SlotTaken, 0);
        a.pump();
    }
    assert!(a.client.pairing_in_progress(), "eight taken slots are retried with new codes");
    a.client.on_relay_error(crate::wire::ErrorCode::SlotTaken, 0);
    a.pump();
    assert!(!a.client.pairing_in_progress());
    assert!(a.events.contains(&ClientEvent::PairingFailed { reason: PairingFailure::RelayUnavailable }));
    assert!(a.events.contains(&ClientEvent::InviteClosed));
}
