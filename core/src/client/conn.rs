//! The client's connection: connect, IK handshake, Hello/Welcome, frames, loss and backoff.

use super::{Client, ClientEvent, ClientOutput, DisconnectReason, RelayInfo};
use crate::io::ConnId;
use crate::keys::GroupId;
use crate::noise::{Channel, ClientAuth, IkInitiator, Intent, PROTOCOL_VERSION, ik_prologue};
use crate::time::Instant;
use crate::wire::{ByeReason, Bytes, ErrorCode, Frame, Hello, MAX_RECORD_LEN, Pong, RecordReader, encode_record};

/// What a connection is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Member,
    Create(Option<Vec<u8>>),
    Pairing,
}

pub(super) enum Phase {
    Idle,
    Waiting { until: Instant },
    Connecting { conn: ConnId, deadline: Instant, purpose: Purpose },
    Handshaking { conn: ConnId, deadline: Instant, purpose: Purpose, init: Box<IkInitiator>, reader: RecordReader },
    Greeting { conn: ConnId, deadline: Instant, purpose: Purpose, channel: Box<Channel> },
    Online { conn: ConnId, purpose: Purpose, channel: Box<Channel> },
}

impl Phase {
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Waiting { until } => Some(*until),
            Phase::Connecting { deadline, .. }
            | Phase::Handshaking { deadline, .. }
            | Phase::Greeting { deadline, .. } => Some(*deadline),
            Phase::Idle | Phase::Online { .. } => None,
        }
    }

    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Phase::Connecting { conn, .. }
            | Phase::Handshaking { conn, .. }
            | Phase::Greeting { conn, .. }
            | Phase::Online { conn, .. } => Some(*conn),
            Phase::Idle | Phase::Waiting { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Waiting { .. } => "waiting",
            Phase::Connecting { .. } => "connecting",
            Phase::Handshaking { .. } => "handshaking",
            Phase::Greeting { .. } => "greeting",
            Phase::Online { .. } => "online",
        }
    }

    pub fn is_online(&self) -> bool {
        matches!(self, Phase::Online { purpose: Purpose::Member | Purpose::Create(_), .. })
    }

    pub fn is_pairing_online(&self) -> bool {
        matches!(self, Phase::Online { purpose: Purpose::Pairing, .. })
    }
}

impl Client {
    /// What the next connection is for, if one is wanted now.
    fn wanted_purpose(&self) -> Option<Purpose> {
        if self.pairing.as_ref().is_some_and(|p| p.needs_pairing_connection()) {
            return Some(Purpose::Pairing);
        }
        if !self.enabled || self.paused || self.membership.is_none() {
            return None;
        }
        Some(match self.membership.as_ref().and_then(|m| m.pending_creation.as_ref()) {
            Some(creation) => Purpose::Create(creation.admission_token.clone()),
            None => Purpose::Member,
        })
    }

    fn target(&self, purpose: &Purpose) -> Option<RelayInfo> {
        match purpose {
            Purpose::Pairing => self.pairing.as_ref().map(|p| p.relay().clone()),
            _ => self.membership.as_ref().map(|m| m.relay.clone()),
        }
    }

    /// Connects at once unless already connected or connecting.
    pub(super) fn connect_now(&mut self) {
        if !matches!(self.phase, Phase::Idle | Phase::Waiting { .. }) {
            return;
        }
        let Some(purpose) = self.wanted_purpose() else {
            self.phase = Phase::Idle;
            return;
        };
        let Some(relay) = self.target(&purpose) else {
            return;
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.phase = Phase::Connecting { conn, deadline: self.now.mono + self.config.connect_timeout, purpose };
        self.out.push_back(ClientOutput::Connect { conn, relay });
    }

    pub(super) fn on_connected(&mut self, conn: ConnId) {
        let Phase::Connecting { conn: c, deadline, purpose } = &self.phase else {
            return;
        };
        if *c != conn {
            return;
        }
        let (deadline, purpose) = (*deadline, purpose.clone());
        let (key, group, relay) = match (&purpose, &self.membership, &self.pairing) {
            (Purpose::Pairing, _, Some(p)) => {
                (p.connection_key().clone(), GroupId::from_bytes([0; 32]), p.relay().clone())
            }
            (_, Some(m), _) => (m.access_key.clone(), m.group_id.clone(), m.relay.clone()),
            _ => return self.lost(DisconnectReason::Local),
        };
        let intent = match &purpose {
            Purpose::Member => Intent::Member,
            Purpose::Create(token) => Intent::CreateGroup { admission_token: token.clone().map(Bytes) },
            Purpose::Pairing => Intent::Pairing,
        };
        self.last_handshake_ms = self.now.unix_ms.max(self.last_handshake_ms + 1);
        let auth = ClientAuth::new(&group, self.last_handshake_ms, intent);
        let prologue = ik_prologue(&self.config.endpoint_id, &relay.endpoint_id);
        let Ok((init, m1)) = IkInitiator::start(&mut self.rng, &key, &relay.noise_key, &prologue, &auth) else {
            return self.lost(DisconnectReason::Local);
        };
        let mut bytes = Vec::new();
        if encode_record(&m1, &mut bytes).is_err() {
            return self.lost(DisconnectReason::Local);
        }
        self.out.push_back(ClientOutput::Transmit { conn, bytes });
        let reader = RecordReader::new(MAX_RECORD_LEN);
        self.phase = Phase::Handshaking { conn, deadline, purpose, init: Box::new(init), reader };
    }

    pub(super) fn on_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        if self.phase.conn() != Some(conn) {
            return;
        }
        match &mut self.phase {
            Phase::Handshaking { reader, .. } => {
                reader.push(bytes);
                self.finish_handshake();
            }
            Phase::Greeting { channel, .. } | Phase::Online { channel, .. } => {
                channel.receive(bytes);
                self.drain_frames();
                if self.phase.conn() == Some(conn) {
                    self.heard_from_relay();
                }
            }
            _ => {}
        }
    }

    fn finish_handshake(&mut self) {
        let Phase::Handshaking { reader, .. } = &mut self.phase else {
            return;
        };
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => return self.lost(DisconnectReason::Refused),
        };
        let leftover = reader.take_buffered();
        let Phase::Handshaking { conn, deadline, purpose, init, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let Ok(session) = init.finish(&record) else {
            self.announce_close(conn, DisconnectReason::Refused);
            return self.lost(DisconnectReason::Refused);
        };
        let mut channel = Box::new(Channel::new(session, &leftover));
        let hello = Frame::Hello(Hello {
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            acked_cursor: self.cursor,
        });
        let mut bytes = Vec::new();
        if channel.send(&hello, &mut bytes).is_err() {
            return self.lost(DisconnectReason::Lost);
        }
        self.out.push_back(ClientOutput::Transmit { conn, bytes });
        self.phase = Phase::Greeting { conn, deadline, purpose, channel };
        self.drain_frames();
    }

    fn drain_frames(&mut self) {
        loop {
            let frame = match &mut self.phase {
                Phase::Greeting { channel, .. } | Phase::Online { channel, .. } => channel.next_frame(),
                _ => return,
            };
            match frame {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => return,
                Err(_) => return self.lost(DisconnectReason::Lost),
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        if let Phase::Greeting { .. } = self.phase {
            return match frame {
                Frame::Welcome(w) => self.on_welcome(w),
                Frame::Error(e) => {
                    self.event(ClientEvent::RelayError { code: e.code });
                    self.failed = true;
                    self.lost(DisconnectReason::Refused)
                }
                _ => self.lost(DisconnectReason::Lost),
            };
        }
        match frame {
            Frame::PushAck(a) => self.on_push_ack(a.push_id, a.cursor),
            Frame::Blobs(b) => self.on_blobs(b),
            Frame::Notify(n) => self.on_notify(n.cursor),
            Frame::Truncated(t) => self.on_truncated(t.earliest),
            Frame::Error(e) => self.on_relay_error(e.code, e.retry_after_ms),
            Frame::Ping(p) => self.send_frame(&Frame::Pong(Pong { nonce: p.nonce })),
            Frame::Pong(p) => self.on_pong(p.nonce),
            Frame::Bye(_) => self.lost(DisconnectReason::Lost),
            Frame::SlotRegistered(_)
            | Frame::SlotOpen(_)
            | Frame::SlotMessage(_)
            | Frame::SlotClose(_)
            | Frame::DeviceRegistered(_) => self.on_pairing_frame(frame),
            _ => {}
        }
    }

    fn on_welcome(&mut self, w: crate::wire::Welcome) {
        let Phase::Greeting { conn, purpose, channel, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        self.phase = Phase::Online { conn, purpose: purpose.clone(), channel };
        self.backoff.reset();
        if purpose == Purpose::Pairing {
            return self.pairing_connected();
        }
        if let (Purpose::Create(_), Some(m)) = (&purpose, &self.membership) {
            let mut confirmed = m.clone();
            confirmed.pending_creation = None;
            self.save_membership(confirmed, false);
        }
        self.failed = false;
        if w.head < self.highest_head {
            self.event(ClientEvent::Rollback { head: w.head, highest_seen: self.highest_head });
            self.recover_from_rollback(w.head);
        }
        self.unchecked = true;
        self.head = w.head.max(self.cursor);
        self.highest_head = self.highest_head.max(w.head);
        self.forget_pruned(w.earliest);
        self.event(ClientEvent::Connected { head: w.head });
        self.push_hold = false;
        self.reset_liveness();
        self.register_introduced_again();
        self.transmit_outbox();
        self.pull_now();
        self.pairing_member_online();
    }

    pub(super) fn on_relay_error(&mut self, code: ErrorCode, retry_after_ms: u64) {
        self.event(ClientEvent::RelayError { code });
        if self.pairing_error(code) {
            return;
        }
        // The relay does not say which request failed: if it was a pull, no page will come,
        // so the retry pulls again (a page that does come makes the extra one a no-op).
        self.pulling = false;
        if self.push_hold {
            // An echo of the burst already being waited out: one backoff step per burst.
            return;
        }
        if code == ErrorCode::RateLimited {
            // Send at most half of what the relay refused next time; acks widen it again.
            self.push_window_now = (self.in_flight / 2).max(1);
        }
        self.push_hold = true;
        self.failed = true;
        // The relay does not say which request failed: resend everything unacknowledged.
        self.forget_in_flight();
        let wait = crate::time::Duration::from_millis(retry_after_ms).max(self.backoff.next(&mut self.rng));
        self.retry_at = Some(self.now.mono + wait);
    }

    pub(super) fn send_frame(&mut self, frame: &Frame) {
        let (Phase::Online { conn, channel, .. } | Phase::Greeting { conn, channel, .. }) = &mut self.phase else {
            return;
        };
        let conn = *conn;
        let mut bytes = Vec::new();
        if channel.send(frame, &mut bytes).is_ok() {
            self.out.push_back(ClientOutput::Transmit { conn, bytes });
            self.note_sent(frame);
        }
    }

    pub(super) fn on_disconnected(&mut self, conn: ConnId) {
        if self.phase.conn() != Some(conn) {
            return;
        }
        let reason = match self.phase {
            Phase::Connecting { .. } => DisconnectReason::Unreachable,
            Phase::Handshaking { .. } => DisconnectReason::Refused,
            _ => DisconnectReason::Lost,
        };
        self.phase = Phase::Idle;
        self.event(ClientEvent::Disconnected { reason });
        self.lost(reason);
    }

    pub(super) fn phase_timeout(&mut self) {
        let now = self.now.mono;
        match self.phase {
            Phase::Waiting { until } if until <= now => {
                self.phase = Phase::Idle;
                self.connect_now();
            }
            Phase::Connecting { deadline, .. }
            | Phase::Handshaking { deadline, .. }
            | Phase::Greeting { deadline, .. }
                if deadline <= now =>
            {
                self.lost(DisconnectReason::Unreachable)
            }
            _ => {}
        }
    }

    /// Closes the connection (if any) and forgets per-connection state.
    pub(super) fn drop_connection(&mut self, reason: DisconnectReason) {
        if let Some(conn) = self.phase.conn() {
            if reason == DisconnectReason::Local {
                self.send_frame(&Frame::Bye(crate::wire::Bye { reason: ByeReason::Normal }));
            }
            self.announce_close(conn, reason);
        }
        self.forget_in_flight();
        self.reset_liveness();
        self.pulling = false;
        self.receiver.clear_gap();
        self.dropped_from = None;
        self.fetch_pos = self.cursor;
        self.log.fetch_from(self.cursor);
        self.pairing_connection_lost();
    }

    fn announce_close(&mut self, conn: ConnId, reason: DisconnectReason) {
        self.out.push_back(ClientOutput::Close { conn });
        self.event(ClientEvent::Disconnected { reason });
    }

    /// The connection is gone: clean up, then reconnect after a backoff if still wanted.
    pub(super) fn lost(&mut self, reason: DisconnectReason) {
        if reason == DisconnectReason::Refused {
            self.failed = true;
        }
        self.drop_connection(reason);
        self.phase = if self.wanted_purpose().is_some() {
            Phase::Waiting { until: self.now.mono + self.backoff.next(&mut self.rng) }
        } else {
            Phase::Idle
        };
    }
}
