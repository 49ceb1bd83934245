//! Frames from authenticated devices, and store completions.

use super::decoy::{Decoy, Reply};
use super::{
    Conn, Deadline, OpCtx, RejectReason, Relay, RelayEvent, RelayStoreOp, RelayStoreResult, Role, TokenBucket, bye,
    slot_close,
};
use crate::io::{ConnId, OpId, StoreError};
use crate::noise::PROTOCOL_VERSION;
use crate::time::Duration;
use crate::wire::*;

/// When a push refused for storage is worth sending again.
const STORAGE_RETRY: Duration = Duration::from_secs(10);

impl Relay {
    pub(super) fn drain_frames(&mut self, conn: ConnId) {
        loop {
            let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else {
                return;
            };
            match session.channel.next_frame() {
                Ok(Some(_)) if session.frames.take(self.now.mono).is_err() => {
                    self.send(conn, &bye(ByeReason::ProtocolViolation));
                    return self.reject(conn, RejectReason::Flood);
                }
                Ok(Some(frame)) => self.on_frame(conn, frame),
                Ok(None) => return,
                Err(_) => {
                    self.send(conn, &bye(ByeReason::ProtocolViolation));
                    return self.reject(conn, RejectReason::Protocol);
                }
            }
        }
    }

    fn on_frame(&mut self, conn: ConnId, frame: Frame) {
        let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else {
            return;
        };
        let role = session.role.clone();
        if !session.greeted {
            return match frame {
                Frame::Hello(h) if h.min_version <= PROTOCOL_VERSION && PROTOCOL_VERSION <= h.max_version => {
                    session.greeted = true;
                    self.welcome(conn, &role, h.acked_cursor);
                }
                Frame::Hello(_) => {
                    self.send_error(conn, ErrorCode::UnsupportedVersion, Duration::ZERO);
                    self.close(conn);
                }
                _ => {
                    self.send_error(conn, ErrorCode::BadRequest, Duration::ZERO);
                    self.reject(conn, RejectReason::Protocol);
                }
            };
        }
        match (frame, role) {
            (Frame::Ping(p), _) => self.send(conn, &Frame::Pong(Pong { nonce: p.nonce })),
            (Frame::Pong(_), _) => {}
            (Frame::Bye(_), _) => self.close(conn),
            (Frame::SlotMessage(m), _) => self.forward_slot_message(conn, m),
            (Frame::SlotClose(c), _) => self.slot_closed_by(conn, c),
            (Frame::SlotOpen(o), Role::Pairing) => self.open_slot(conn, o.slot),
            (Frame::Push(p), Role::Member { group, key }) => self.push(conn, group, key, p),
            (Frame::Pull(p), Role::Member { group, .. }) => self.pull(conn, group, p),
            (Frame::Ack(a), Role::Member { group, key }) => self.ack(group, key, a.cursor),
            (Frame::RegisterDevice(r), Role::Member { group, .. }) => self.register(conn, group, r.access_key),
            (Frame::SlotRegister(r), Role::Member { .. }) => self.register_slot(conn, r),
            _ => self.send_error(conn, ErrorCode::BadRequest, Duration::ZERO),
        }
    }

    fn welcome(&mut self, conn: ConnId, role: &Role, acked_cursor: u64) {
        let (head, earliest) = match role {
            Role::Member { group, .. } => match self.groups.get_mut(group) {
                Some(g) => {
                    g.online.insert(conn);
                    (g.head, g.earliest)
                }
                None => (0, 1),
            },
            Role::Pairing => (0, 1),
        };
        if let Role::Member { group, key } = role {
            // The device's cursor as it says hello counts as an acknowledgement (its last `Ack`
            // may have been lost as it closed): saved, and retention may act on it.
            self.ack(*group, *key, acked_cursor);
        }
        let limits = &self.config.limits;
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            head,
            earliest,
            max_envelope: u32::try_from(limits.max_envelope).unwrap_or(u32::MAX),
            max_page_blobs: limits.max_page_blobs,
        };
        self.send(conn, &Frame::Welcome(welcome));
    }

    fn push(&mut self, conn: ConnId, group: [u8; 32], key: [u8; 32], push: Push) {
        let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else {
            return;
        };
        if !session.push_order.arrive(push.push_id) {
            // First sent after a push that was refused: not stored before that one. Refused
            // too, so the device sends it again: not waiting for its answer is not enough, as
            // a device that puts older pushes in front of its outbox (healing a lost blob)
            // sends them after the refused one's first arrival and before its resend.
            return self.send_error(conn, ErrorCode::Unavailable, Duration::ZERO);
        }
        let limits = &self.config.limits;
        if push.envelope.len() > limits.max_envelope {
            return self.refuse_push(conn, push.push_id, ErrorCode::TooLarge, Duration::ZERO);
        }
        let now = self.now.mono;
        let (burst, rate) = (limits.push_burst, limits.push_per_sec);
        let bucket =
            self.push_limits.entry(key).or_insert_with(|| TokenBucket::per(burst, rate, Duration::from_secs(1), now));
        if let Err(wait) = bucket.take(now) {
            return self.refuse_push(conn, push.push_id, ErrorCode::RateLimited, wait);
        }
        let (quota_bytes, quota_blobs) = (limits.group_quota_bytes, limits.group_quota_blobs);
        let Some(g) = self.groups.get_mut(&group) else {
            return self.refuse_push(conn, push.push_id, ErrorCode::Unauthorized, Duration::ZERO);
        };
        #[cfg(feature = "planted-bugs")]
        let dedupe = !self.config.bugs.skip_dedupe;
        #[cfg(not(feature = "planted-bugs"))]
        let dedupe = true;
        if let Some(cursor) = g.stored_cursor(&push.push_id).filter(|_| dedupe) {
            return self.ack_push(conn, push.push_id, cursor);
        }
        if let Some(pending) = g.pending.get(&push.push_id).filter(|_| dedupe) {
            if !pending.doomed {
                return g.wait_for(push.push_id, conn);
            }
            // Waiting on it would let this device's later pushes overtake it.
            return self.refuse_push(conn, push.push_id, ErrorCode::Unavailable, Duration::from_secs(1));
        }
        let size = push.envelope.len();
        if self.refusing_writes {
            // Storage is full or nearly: the device keeps the blob and tries again later.
            return self.refuse_push(conn, push.push_id, ErrorCode::QuotaExceeded, STORAGE_RETRY);
        }
        let over_total = self.total_bytes.saturating_add(size as u64) > self.config.limits.max_total_bytes;
        if over_total || !g.fits(size as u64, quota_bytes, quota_blobs) {
            return self.refuse_push(conn, push.push_id, ErrorCode::QuotaExceeded, Duration::ZERO);
        }
        self.total_bytes += size as u64;
        let after = g.assign(push.push_id, size as u64, conn);
        #[cfg(feature = "planted-bugs")]
        if self.config.bugs.ack_before_durable {
            let cursor = g.head + g.pending.len() as u64;
            self.send(conn, &Frame::PushAck(PushAck { push_id: push.push_id, cursor }));
        }
        let append = RelayStoreOp::Append {
            group_id: group,
            push_id: push.push_id,
            stored_at_ms: self.now.unix_ms,
            envelope: push.envelope,
            after,
        };
        self.store(append, OpCtx::Append { group, push_id: push.push_id, size });
    }

    /// Refuses a push: the connection's later pushes are dropped until it comes again.
    fn refuse_push(&mut self, conn: ConnId, push_id: [u8; 16], code: ErrorCode, retry_after: Duration) {
        self.hold_back_after(conn, push_id);
        self.send_error(conn, code, retry_after);
    }

    /// The push will not be stored as sent: the connection's pushes sent after it wait for it.
    fn hold_back_after(&mut self, conn: ConnId, push_id: [u8; 16]) {
        if let Some(Conn::Open(session)) = self.conns.get_mut(&conn) {
            session.push_order.refused(push_id);
        }
    }

    /// Acknowledges a push; the device will not send it again, so it no longer holds back the
    /// connection's later pushes.
    fn ack_push(&mut self, conn: ConnId, push_id: [u8; 16], cursor: u64) {
        if let Some(Conn::Open(session)) = self.conns.get_mut(&conn) {
            session.push_order.acked(push_id);
        }
        self.send(conn, &Frame::PushAck(PushAck { push_id, cursor }));
    }

    fn pull(&mut self, conn: ConnId, group: [u8; 32], pull: Pull) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        let (head, head_chain, earliest) = (g.head, g.head_chain, g.earliest);
        if pull.after.saturating_add(1) < earliest {
            return self.send(conn, &Frame::Truncated(Truncated { earliest }));
        }
        if pull.after >= head {
            let page = Blobs {
                after: pull.after,
                prev_chain: head_chain,
                blobs: Vec::new(),
                has_more: false,
                max_cursor: head,
            };
            return self.send(conn, &Frame::Blobs(page));
        }
        match self.conns.get_mut(&conn) {
            Some(Conn::Open(session)) if !session.pulling => session.pulling = true,
            _ => return,
        }
        let limits = &self.config.limits;
        let request = RelayStoreOp::Read {
            group_id: group,
            after: pull.after,
            up_to: head,
            limit: pull.limit.clamp(1, limits.max_page_blobs),
            max_bytes: limits.max_page_bytes,
        };
        self.store(request, OpCtx::Read { conn, group, after: pull.after, head });
    }

    fn ack(&mut self, group: [u8; 32], key: [u8; 32], cursor: u64) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let cursor = cursor.min(g.head);
        let known = g.acked.entry(key).or_insert(0);
        if cursor <= *known {
            return;
        }
        *known = cursor;
        self.store(RelayStoreOp::SaveAck { group_id: group, key, cursor }, OpCtx::SaveAck);
        if self.config.limits.retention_all_acked {
            self.prune(group, 0);
        }
    }

    fn register(&mut self, conn: ConnId, group: [u8; 32], key: [u8; 32]) {
        if self.groups.get(&group).is_some_and(|g| g.keys.contains(&key)) {
            return self.send(conn, &Frame::DeviceRegistered(DeviceRegistered { access_key: key }));
        }
        if self.refusing_writes {
            return self.send_error(conn, ErrorCode::Unavailable, STORAGE_RETRY);
        }
        self.store(RelayStoreOp::RegisterKey { group_id: group, key }, OpCtx::RegisterKey { conn, group, key });
    }

    fn register_slot(&mut self, conn: ConnId, r: SlotRegister) {
        let now = self.now;
        let max_expiry = now.unix_ms.saturating_add(self.config.limits.max_slot_ttl.as_millis());
        let ttl_ms = r.expires_at_ms.min(max_expiry).saturating_sub(now.unix_ms);
        if r.slot >= 1 << crate::invite::SLOT_BITS || ttl_ms == 0 {
            return self.send_error(conn, ErrorCode::BadRequest, Duration::ZERO);
        }
        let expires = now.mono + Duration::from_millis(ttl_ms);
        match self.slots.register(r.slot, conn, expires, now.mono) {
            Ok(()) => {
                self.schedule(expires, Deadline::Slot(r.slot));
                self.send(conn, &Frame::SlotRegistered(SlotRegistered { slot: r.slot }))
            }
            Err(super::slots::SlotRefusal::TooMany) => self.send_error(conn, ErrorCode::QuotaExceeded, Duration::ZERO),
            Err(_) => self.send_error(conn, ErrorCode::SlotTaken, Duration::ZERO),
        }
    }

    fn open_slot(&mut self, conn: ConnId, slot: u32) {
        let now = self.now.mono;
        let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Err(wait) = session.slot_opens.take(now) {
            return self.send_error(conn, ErrorCode::RateLimited, wait);
        }
        let source = session.source;
        if let Err(wait) = self.slot_opens_by_source.take(source, now) {
            return self.send_error(conn, ErrorCode::RateLimited, wait);
        }
        if let Err(wait) = self.slot_opens.take(now) {
            return self.send_error(conn, ErrorCode::RateLimited, wait);
        }
        let decoys = &session.decoys;
        if decoys.iter().any(|d| d.slot == slot) || self.slots.peer(slot, conn).is_some() {
            return;
        }
        if decoys.len() + self.slots.attached_to(conn) >= super::slots::MAX_SLOTS_PER_CONN {
            return self.send_error(conn, ErrorCode::QuotaExceeded, Duration::ZERO);
        }
        match self.slots.open(slot, conn, now, self.config.limits.max_slot_attempts) {
            Ok(inviter) => {
                self.schedule(now + super::slots::ATTEMPT_TIMEOUT, Deadline::Slot(slot));
                self.send(inviter, &Frame::SlotOpen(SlotOpen { slot }))
            }
            // Missing, busy or used up: answered as a live invite with another code would be.
            Err(_) => {
                let decoy = Decoy::new(slot, super::decoy::decoy_key(&self.decoy_secret, slot), now);
                let due = decoy.next_due();
                if let Some(Conn::Open(session)) = self.conns.get_mut(&conn) {
                    session.decoys.push(decoy);
                }
                self.schedule(due, Deadline::Decoy(conn));
            }
        }
    }

    fn forward_slot_message(&mut self, conn: ConnId, m: SlotMessage) {
        let now = self.now.mono;
        if let Some(Conn::Open(session)) = self.conns.get_mut(&conn)
            && let Some(decoy) = session.decoys.iter_mut().find(|d| d.slot == m.slot)
        {
            decoy.receive(&m.data, &mut self.rng, now);
            let due = decoy.next_due();
            return self.schedule(due, Deadline::Decoy(conn));
        }
        match self.slots.peer(m.slot, conn) {
            Some(peer) => self.send(peer, &Frame::SlotMessage(m)),
            None => self.send_error(conn, ErrorCode::NotFound, Duration::ZERO),
        }
    }

    /// Sends the decoy replies of `conn` whose delay is over; a decoy that failed is gone.
    pub(super) fn decoy_due(&mut self, conn: ConnId, now: crate::time::Instant) {
        let Some(Conn::Open(session)) = self.conns.get_mut(&conn) else { return };
        let mut replies = Vec::new();
        session.decoys.retain_mut(|d| {
            let due = d.due(now);
            let over = matches!(due.last(), Some(Reply::Failed));
            replies.extend(due.into_iter().map(|r| (d.slot, r)));
            !over
        });
        let next = session.decoys.iter().map(Decoy::next_due).min();
        for (slot, reply) in replies {
            match reply {
                Reply::Message(data) => self.send(conn, &Frame::SlotMessage(SlotMessage { slot, data })),
                Reply::Failed => self.send(conn, &slot_close(slot, SlotCloseReason::Failed)),
            }
        }
        if let Some(next) = next {
            self.schedule(next, Deadline::Decoy(conn));
        }
    }

    fn slot_closed_by(&mut self, conn: ConnId, c: SlotClose) {
        if let Some(Conn::Open(session)) = self.conns.get_mut(&conn) {
            session.decoys.retain(|d| d.slot != c.slot);
        }
        let Some(slot) = self.slots.get(c.slot) else {
            return;
        };
        let inviter = slot.inviter;
        let attempts_left = slot.attempts < self.config.limits.max_slot_attempts;
        if conn == inviter {
            let finished =
                matches!(c.reason, SlotCloseReason::Done | SlotCloseReason::Cancelled | SlotCloseReason::Expired);
            let joiner = if finished || !attempts_left {
                self.slots.remove(c.slot).and_then(|s| s.joiner)
            } else {
                self.slots.detach(c.slot)
            };
            if let Some(j) = joiner {
                self.send(j, &Frame::SlotClose(c));
            }
        } else if self.slots.peer(c.slot, conn) == Some(inviter) {
            self.slots.detach(c.slot);
            self.send(inviter, &slot_close(c.slot, SlotCloseReason::Failed));
        }
    }

    pub(super) fn on_store_done(&mut self, op: OpId, result: RelayStoreResult) {
        let Some(ctx) = self.ops.remove(&op) else {
            return;
        };
        if let RelayStoreResult::Failed(_) = result {
            self.event(RelayEvent::StoreFailed);
        }
        match ctx {
            OpCtx::CreateGroup { conn, group, key } => {
                self.group_created(conn, group, key, result == RelayStoreResult::Done)
            }
            OpCtx::RegisterKey { conn, group, key } => {
                if result == RelayStoreResult::Done {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.keys.insert(key);
                    }
                    self.send(conn, &Frame::DeviceRegistered(DeviceRegistered { access_key: key }));
                } else {
                    self.send_error(conn, ErrorCode::Unavailable, Duration::from_secs(1));
                }
            }
            OpCtx::Append { group, push_id, size } => self.appended(group, push_id, size, result),
            OpCtx::Read { conn, group, after, head } => {
                if !self.pull_answered(conn) {
                    return;
                }
                match result {
                    RelayStoreResult::Blobs { prev_chain, blobs, more } => {
                        // A push of this device refused here but stored (through another relay,
                        // its answer lost) is one the device now sees stored and never resends:
                        // it holds nothing back any more.
                        if let Some(Conn::Open(session)) = self.conns.get_mut(&conn) {
                            blobs.iter().for_each(|b| session.push_order.acked(b.push_id));
                        }
                        let prev_chain = prev_chain.unwrap_or_else(|| crate::log::genesis(&group));
                        let page = Blobs { after, prev_chain, blobs, has_more: more, max_cursor: head };
                        self.send(conn, &Frame::Blobs(page))
                    }
                    _ => self.send_error(conn, ErrorCode::Unavailable, Duration::from_secs(1)),
                }
            }
            OpCtx::Load { group, conn } => {
                if conn.is_none() {
                    self.refreshing.remove(&group);
                }
                if let RelayStoreResult::Group(Some(snapshot)) = &result {
                    self.group_loaded(snapshot);
                }
                match (conn, &result) {
                    (Some(conn), RelayStoreResult::Group(_)) => self.looked_up(conn),
                    // What this relay knows may be stale: the device comes back later.
                    (Some(conn), _) => self.close(conn),
                    (None, _) => {}
                }
            }
            OpCtx::SaveAck => {}
            OpCtx::Prune { group } => {
                if let (RelayStoreResult::Pruned { earliest, bytes, blobs }, Some(g)) =
                    (result, self.groups.get_mut(&group))
                {
                    let before = g.footprint();
                    g.earliest = g.earliest.max(earliest);
                    g.stored_bytes = bytes;
                    g.stored_blobs = blobs;
                    self.total_bytes = (self.total_bytes + g.footprint()).saturating_sub(before);
                }
            }
        }
    }

    /// The store answered `conn`'s pull: it may pull again. False if it has gone.
    fn pull_answered(&mut self, conn: ConnId) -> bool {
        match self.conns.get_mut(&conn) {
            Some(Conn::Open(session)) => {
                session.pulling = false;
                true
            }
            _ => false,
        }
    }

    /// What the store holds of a group: taken in, and its devices told of a new head.
    fn group_loaded(&mut self, snapshot: &super::GroupSnapshot) {
        let moved = match self.groups.get_mut(&snapshot.group_id) {
            Some(g) => {
                let before = g.footprint();
                let moved = g.refresh(snapshot);
                self.total_bytes = (self.total_bytes + g.footprint()).saturating_sub(before);
                moved
            }
            None => {
                self.total_bytes += snapshot.bytes;
                let group =
                    super::Group::from_snapshot(&super::GroupSnapshot { recent: Vec::new(), ..snapshot.clone() });
                self.groups.insert(snapshot.group_id, group);
                false
            }
        };
        if moved {
            self.notify_online(snapshot.group_id, &[]);
        }
    }

    /// Tells the group's devices online (but `except`) of its durable head.
    fn notify_online(&mut self, group: [u8; 32], except: &[ConnId]) {
        let Some(g) = self.groups.get(&group) else { return };
        let head = g.head;
        let online: Vec<ConnId> = g.online.iter().copied().filter(|c| !except.contains(c)).collect();
        for c in online {
            self.send(c, &Frame::Notify(Notify { cursor: head }));
        }
    }

    fn appended(&mut self, group: [u8; 32], push_id: [u8; 16], size: usize, result: RelayStoreResult) {
        let (stored, duplicate) = match &result {
            RelayStoreResult::Stored { cursor, chain } => (Some((*cursor, *chain)), None),
            RelayStoreResult::Duplicate { cursor } => (None, Some(*cursor)),
            _ => (None, None),
        };
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let (before, head_before) = (g.footprint(), g.head);
        let Some((push, head_moved)) = g.settle(&push_id, stored, duplicate) else {
            return;
        };
        // Stored past blobs the pusher has not heard of (another relay's): it is told too.
        let jumped = stored.is_some_and(|(cursor, _)| cursor > head_before + 1);
        self.total_bytes = (self.total_bytes + g.footprint()).saturating_sub(before);
        let doomed = g.take_newly_doomed();
        // Stored before this relay heard of the blobs up to it (another relay's, or this
        // one's before a lost answer): the head is read again before devices are told.
        let behind = duplicate.is_some_and(|cursor| cursor > g.head);
        // Their devices' later pushes must wait for them now, not only once they fail.
        for (id, waiters) in doomed {
            for w in waiters {
                self.hold_back_after(w, id);
            }
        }
        match stored.map(|(cursor, _)| cursor).or(duplicate) {
            Some(cursor) => {
                if stored.is_some() {
                    self.event(RelayEvent::Stored { cursor, bytes: size });
                }
                for w in &push.waiters {
                    self.ack_push(*w, push_id, cursor);
                }
            }
            None => {
                let wait = match result {
                    RelayStoreResult::Failed(StoreError::Full) => Duration::from_secs(30),
                    _ => Duration::from_secs(1),
                };
                for w in &push.waiters {
                    self.refuse_push(*w, push_id, ErrorCode::Unavailable, wait);
                }
            }
        }
        if head_moved {
            self.notify_online(group, if jumped { &[] } else { &push.waiters });
        }
        if behind {
            self.refresh_group(group);
        }
    }
}
