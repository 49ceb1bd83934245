//! Connection set-up at the relay: the IK responder, admission, and group creation.

use subtle::ConstantTimeEq;

use super::{
    Conn, OpCtx, RejectReason, Relay, RelayEvent, RelayOutput, RelayStoreOp, Role, Session, Source, TokenBucket,
};
use crate::io::ConnId;
use crate::noise::{Channel, IkResponder, Intent, ik_prologue};
use crate::time::Duration;
use crate::wire::{MAX_RECORD_LEN, encode_record};

impl Relay {
    pub(super) fn on_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.conns.get_mut(&conn) {
            Some(Conn::Handshaking { reader, .. }) => {
                reader.push(bytes);
                self.try_handshake(conn);
            }
            Some(Conn::Creating { leftover, .. } | Conn::LookingUp { leftover, .. }) => {
                // A device waits for the handshake's answer before it sends anything more.
                if leftover.len() + bytes.len() > self.config.limits.max_preauth_record {
                    return self.reject(conn, RejectReason::Protocol);
                }
                leftover.extend_from_slice(bytes);
            }
            Some(Conn::Open(session)) => {
                session.channel.receive(bytes);
                self.drain_frames(conn);
            }
            None => {}
        }
    }

    fn try_handshake(&mut self, conn: ConnId) {
        let Some(Conn::Handshaking { reader, peer, source, .. }) = self.conns.get_mut(&conn) else {
            return;
        };
        let source = *source;
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => return self.reject(conn, RejectReason::Handshake),
        };
        let leftover = reader.take_buffered();
        let prologue = ik_prologue(peer, &self.config.endpoint_id);
        let responder = match IkResponder::read_first(&mut self.rng, &self.config.noise_key, &prologue, &record) {
            Ok(r) => r,
            Err(_) => return self.reject(conn, RejectReason::Handshake),
        };
        let key = responder.remote_key();
        if !self.replay.check(&key, responder.auth().timestamp_ms, self.now.unix_ms) {
            return self.reject(conn, RejectReason::Replay);
        }
        let group = responder.auth().group_id;
        #[cfg(feature = "planted-bugs")]
        let look_up = self.config.shared_store && !self.config.bugs.no_shared_lookup;
        #[cfg(not(feature = "planted-bugs"))]
        let look_up = self.config.shared_store;
        if look_up && responder.auth().intent != Intent::Pairing {
            // Another relay may have created the group, admitted the key or appended since
            // this one last looked: the store decides, and the welcome's head is current.
            let responder = Box::new(responder);
            self.conns.insert(conn, Conn::LookingUp { responder, leftover, source });
            return self.store(RelayStoreOp::LoadGroup { group_id: group }, OpCtx::Load { group, conn: Some(conn) });
        }
        self.authorize(conn, responder, leftover, source);
    }

    /// The store answered the group lookup of a handshake waiting for it.
    pub(super) fn looked_up(&mut self, conn: ConnId) {
        if let Some(Conn::LookingUp { responder, leftover, source }) = self.conns.remove(&conn) {
            self.authorize(conn, *responder, leftover, source);
        }
    }

    /// Admits, refuses or creates the group for a device whose first handshake message was
    /// read, by what the relay knows of the group.
    fn authorize(&mut self, conn: ConnId, responder: IkResponder, leftover: Vec<u8>, source: Source) {
        let key = responder.remote_key();
        let group = responder.auth().group_id;
        match responder.auth().intent.clone() {
            Intent::Pairing => self.admit(conn, responder, Role::Pairing, leftover, source),
            Intent::Member => {
                if self.groups.get(&group).is_some_and(|g| g.keys.contains(&key.0)) {
                    self.admit(conn, responder, Role::Member { group, key: key.0 }, leftover, source);
                } else {
                    self.reject(conn, RejectReason::Unauthorized);
                }
            }
            Intent::CreateGroup { .. } if self.groups.get(&group).is_some_and(|g| g.keys.contains(&key.0)) => {
                self.admit(conn, responder, Role::Member { group, key: key.0 }, leftover, source)
            }
            Intent::CreateGroup { admission_token } => {
                if let Some(required) = &self.config.limits.admission_token {
                    let given = admission_token.map(|t| t.0).unwrap_or_default();
                    if !bool::from(given.as_slice().ct_eq(required.as_slice())) {
                        return self.reject(conn, RejectReason::Admission);
                    }
                }
                if self.groups.contains_key(&group) || self.creating.contains_key(&group) {
                    return self.reject(conn, RejectReason::Unauthorized);
                }
                if !self.may_create_group(source) {
                    return self.reject(conn, RejectReason::Limited);
                }
                self.creating.insert(group, conn);
                let responder = Box::new(responder);
                self.conns.insert(conn, Conn::Creating { responder, leftover, source });
                self.store(
                    RelayStoreOp::CreateGroup { group_id: group, key: key.0 },
                    OpCtx::CreateGroup { conn, group, key: key.0 },
                );
            }
        }
    }

    /// Whether one more group may be created now, from `source`: storage takes writes, the
    /// relay holds fewer than `max_groups`, and the creation budgets (the source's, then the
    /// global one) have a token: a source over its budget spends none of everyone's.
    fn may_create_group(&mut self, source: Source) -> bool {
        let now = self.now.mono;
        let held = (self.groups.len() + self.creating.len()) as u64;
        !self.refusing_writes
            && held < self.config.limits.max_groups
            && self.group_creates_by_source.take(source, now).is_ok()
            && self.group_creates.take(now).is_ok()
    }

    /// Completes the handshake for an admitted device.
    pub(super) fn admit(
        &mut self,
        conn: ConnId,
        responder: IkResponder,
        role: Role,
        leftover: Vec<u8>,
        source: Source,
    ) {
        let (session, reply) = match responder.accept() {
            Ok(x) => x,
            Err(_) => return self.reject(conn, RejectReason::Handshake),
        };
        let mut bytes = Vec::with_capacity(reply.len() + 2);
        if encode_record(&reply, &mut bytes).is_err() || reply.len() > MAX_RECORD_LEN {
            return self.reject(conn, RejectReason::Handshake);
        }
        let limits = &self.config.limits;
        let now = self.now.mono;
        let slot_opens =
            TokenBucket::per(limits.slot_open_burst, limits.slot_open_per_min, Duration::from_secs(60), now);
        // Each push and its answer's acknowledgement: room for a device at its push limit.
        let frame_burst = limits.frame_burst.max(limits.push_burst.saturating_mul(2));
        let frame_rate = limits.frame_per_sec.max(limits.push_per_sec.saturating_mul(2));
        let frames = TokenBucket::per(frame_burst, frame_rate, Duration::from_secs(1), now);
        let channel = Channel::new(session, &leftover);
        // A pairing connection serves one joining attempt: it lives no longer than an invite.
        let expires = (role == Role::Pairing).then(|| self.now.mono + limits.max_slot_ttl);
        self.conns.insert(
            conn,
            Conn::Open(Box::new(Session {
                channel,
                role,
                greeted: false,
                source,
                slot_opens,
                frames,
                push_order: Default::default(),
                pulling: false,
                expires,
                decoys: Vec::new(),
            })),
        );
        if let Some(expires) = expires {
            self.schedule(expires, super::Deadline::Conn(conn));
        }
        self.out.push_back(RelayOutput::Transmit { conn, bytes });
        self.event(RelayEvent::Authenticated { conn });
        self.drain_frames(conn);
    }

    /// The store answered a CreateGroup.
    pub(super) fn group_created(&mut self, conn: ConnId, group: [u8; 32], key: [u8; 32], ok: bool) {
        self.creating.remove(&group);
        if ok {
            self.groups.entry(group).or_insert_with(|| super::Group::new(group, key));
            self.event(RelayEvent::GroupCreated);
        }
        let Some(Conn::Creating { .. }) = self.conns.get(&conn) else {
            return;
        };
        let Some(Conn::Creating { responder, leftover, source }) = self.conns.remove(&conn) else {
            return;
        };
        if ok {
            self.admit(conn, *responder, Role::Member { group, key }, leftover, source);
        } else {
            self.event(RelayEvent::StoreFailed);
            self.out.push_back(RelayOutput::Close { conn });
        }
    }
}
