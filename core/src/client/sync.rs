//! Pushing (seal, persist, send, retry) and pulling (fetch, open, apply, persist, ack).

use super::logview;
use super::receive::{Incoming, Verdict};
use super::{
    Client, ClientEvent, ClientStoreOp, CommandError, Membership, OpKind, OutboxEntry, ReceivedBlob, RelayInfo,
};
use crate::envelope::{BlobCipher, BlobKind, ChainLink, MAX_PAYLOAD};
use crate::io::StoreError;
use crate::keys::{EpochSecret, GroupId, NoiseKeypair};
use crate::wire::{Ack, Blobs, Bytes, Frame, Pull, Push};

impl Client {
    pub(super) fn push(&mut self, data: Vec<u8>) -> Result<[u8; 16], CommandError> {
        if self.membership.is_none() {
            return Err(CommandError::NotInGroup);
        }
        if data.len() > MAX_PAYLOAD {
            return Err(CommandError::TooLarge(data.len()));
        }
        let push_id: [u8; 16] = self.rng.bytes();
        self.sealing.push_back((push_id, data));
        self.seal_batch();
        Ok(push_id)
    }

    /// Seals queued payloads and persists them as one outbox write (one at a time, so a
    /// failed write can give its sequence numbers back).
    fn seal_batch(&mut self) {
        if self.appending > 0 || self.sealing.is_empty() {
            return;
        }
        let Some(cipher) = &self.cipher else { return };
        let (prev_seq, prev_hash) = (self.next_seq, self.last_hash);
        let mut entries = Vec::new();
        let mut pushed = Vec::new();
        while entries.len() < self.config.seal_batch {
            let Some((push_id, data)) = self.sealing.pop_front() else {
                break;
            };
            let link = ChainLink { seq: self.next_seq, prev_hash: self.last_hash };
            match cipher.seal(&self.config.device, link, BlobKind::Data, &data, &mut self.rng) {
                Ok(sealed) => {
                    entries.push(OutboxEntry { push_id, seq: self.next_seq, envelope: sealed.envelope });
                    self.next_seq += 1;
                    self.last_hash = sealed.hash;
                    pushed.push(push_id);
                }
                Err(_) => self
                    .out
                    .push_back(super::ClientOutput::Event(ClientEvent::PushFailed { push_id, error: StoreError::Io })),
            }
        }
        if entries.is_empty() {
            return;
        }
        self.appending = entries.len();
        let request = ClientStoreOp::AppendOutbox {
            entries: entries.clone(),
            next_seq: self.next_seq,
            last_hash: self.last_hash,
        };
        self.store(request, OpKind::AppendOutbox { entries, prev_seq, prev_hash, pushed });
    }

    pub(super) fn outbox_appended(
        &mut self,
        entries: Vec<OutboxEntry>,
        prev_seq: u64,
        prev_hash: [u8; 32],
        pushed: Vec<[u8; 16]>,
        result: super::StoreResult,
    ) {
        self.appending = 0;
        match result {
            Ok(()) => {
                self.outbox.extend(entries);
                self.event(ClientEvent::PushQueued { push_ids: pushed });
                self.transmit_outbox();
            }
            Err(error) => {
                // Nothing was written and nothing was sent: the sequence numbers are free again.
                self.next_seq = prev_seq;
                self.last_hash = prev_hash;
                for push_id in pushed {
                    self.event(ClientEvent::PushFailed { push_id, error });
                }
            }
        }
        self.seal_batch();
    }

    /// Sends durable outbox entries not yet in flight, up to the window.
    pub(super) fn transmit_outbox(&mut self) {
        if !self.phase.is_online() || self.push_hold {
            return;
        }
        let (window, window_bytes) = (self.push_window_now, self.config.push_window_bytes);
        let mut to_send = Vec::new();
        for e in self.outbox.iter().skip(self.in_flight) {
            let count = self.in_flight + to_send.len();
            if count >= window || (count > 0 && self.in_flight_bytes + e.envelope.len() > window_bytes) {
                break;
            }
            self.in_flight_bytes += e.envelope.len();
            to_send.push(Frame::Push(Push { push_id: e.push_id, envelope: Bytes(e.envelope.clone()) }));
        }
        #[cfg(feature = "planted-bugs")]
        let to_send = self.reseal_retries(to_send);
        self.in_flight += to_send.len();
        for frame in to_send {
            self.send_frame(&frame);
        }
    }

    /// Nothing sent counts as in flight any more: it is all sent again from the front.
    pub(super) fn forget_in_flight(&mut self) {
        self.in_flight = 0;
        self.in_flight_bytes = 0;
    }

    /// The relay's head is below what it showed before: it lost history. Push again every sent
    /// blob of this device (the relay answers those it still holds as duplicates: which ones
    /// survived is unknown, since other devices' resends may already fill the cursors below its
    /// head). A device whose cursor is at or below the new head goes on from it, checking the
    /// log against its chain value there; one above it knows no chain value below the head, and
    /// the history there may be new (other devices' resends, after a restore to an older
    /// backup, fill the cursors again): it reads the log again from the start.
    pub(super) fn recover_from_rollback(&mut self, head: u64) {
        self.highest_head = head;
        if self.cursor <= head {
            let chain = self.log.chain_at(self.cursor);
            return self.rewind(head, chain);
        }
        self.read_again_from_start();
    }

    /// The relay's log does not extend what it showed this device: read it again from the
    /// start, and push again every acknowledged blob of this device (the relay answers those
    /// it holds as duplicates).
    pub(super) fn recover_from_fork(&mut self, proof: ([u8; 32], [u8; 32])) {
        self.event(ClientEvent::Forked { cursor: self.fetch_pos, proof });
        self.read_again_from_start();
    }

    /// Rewinds to cursor 0, whose chain value is the group's genesis.
    fn read_again_from_start(&mut self) {
        let genesis = self.membership.as_ref().map(|m| crate::log::genesis(m.group_id.expose()));
        self.rewind(0, genesis);
    }

    /// Reads the relay's log again from `to` (whose chain value is `chain`, if known), after
    /// pushing again every sent blob of this device.
    fn rewind(&mut self, to: u64, chain: Option<[u8; 32]>) {
        let lost: Vec<OutboxEntry> = std::mem::take(&mut self.own_sent).into_values().collect();
        self.requeue(lost);
        self.cursor = self.cursor.min(to);
        self.fetch_pos = self.cursor;
        self.log.restart(chain);
        self.receiver.clear_gap();
        self.dropped_from = None;
        self.unchecked = true;
        self.delivering = true;
        let (cursor, highest_head, trust_floor) = (self.cursor, self.highest_head, self.receiver.trust_floor());
        let request = ClientStoreOp::Deliver {
            blobs: Vec::new(),
            cursor,
            log_chain: chain,
            senders: Vec::new(),
            highest_head,
            trust_floor,
            sent: Vec::new(),
        };
        self.store(request, OpKind::Deliver { cursor, log_chain: chain, blobs: Vec::new() });
    }

    /// Pushes these acknowledged blobs again (the relay lost or altered them), ahead of
    /// everything unsent: they are older.
    pub(super) fn requeue(&mut self, mut entries: Vec<OutboxEntry>) {
        if entries.is_empty() {
            return;
        }
        entries.sort_by_key(|e| e.seq);
        let push_ids = entries.iter().map(|e| e.push_id).collect();
        self.acked.retain(|(id, _)| !entries.iter().any(|e| e.push_id == *id));
        for e in entries.into_iter().rev() {
            self.outbox.push_front(e);
        }
        self.store(ClientStoreOp::Requeue { push_ids }, OpKind::Requeue);
        self.forget_in_flight();
        self.transmit_outbox();
    }

    /// Forgets this device's sent blobs below `earliest`: the relay pruned them, so no copy of
    /// them is left for it to lose.
    pub(super) fn forget_pruned(&mut self, earliest: u64) {
        let kept = self.own_sent.split_off(&earliest);
        let pruned = std::mem::replace(&mut self.own_sent, kept);
        if !pruned.is_empty() {
            let push_ids = pruned.into_values().map(|e| e.push_id).collect();
            self.store(ClientStoreOp::ForgetSent { push_ids }, OpKind::ForgetSent);
        }
    }

    /// Planted bug: a push sent before is sealed again (new nonce) instead of resent as is.
    #[cfg(feature = "planted-bugs")]
    fn reseal_retries(&mut self, frames: Vec<Frame>) -> Vec<Frame> {
        if !self.config.bugs.reseal_on_retry {
            return frames;
        }
        let Some(cipher) = &self.cipher else { return frames };
        frames
            .into_iter()
            .map(|f| match f {
                Frame::Push(p) if !self.sent_once.insert(p.push_id) => {
                    let resealed = cipher.open(&p.envelope).ok().and_then(|o| {
                        let link = ChainLink { seq: o.seq, prev_hash: o.prev_hash };
                        cipher.seal(&self.config.device, link, o.kind, &o.payload, &mut self.rng).ok()
                    });
                    let envelope = resealed.map(|s| Bytes(s.envelope)).unwrap_or(p.envelope);
                    Frame::Push(Push { push_id: p.push_id, envelope })
                }
                other => other,
            })
            .collect()
    }

    pub(super) fn on_push_ack(&mut self, push_id: [u8; 16], cursor: u64) {
        if !self.acknowledged(push_id, cursor) {
            return;
        }
        self.acked.push((push_id, cursor));
        self.flush_sent();
        self.transmit_outbox();
        if self.paused && self.unsent() == 0 && self.flush_deadline.is_some() {
            self.flush_deadline = Some(self.now.mono);
        }
    }

    /// The outbox entry `push_id` is durable at the relay at `cursor` (its `PushAck`, or found
    /// in the log): it moves to the sent log. The caller persists that. False if it was not in
    /// the outbox.
    fn acknowledged(&mut self, push_id: [u8; 16], cursor: u64) -> bool {
        let Some(pos) = self.outbox.iter().position(|e| e.push_id == push_id) else {
            return false;
        };
        let Some(entry) = self.outbox.remove(pos) else { return false };
        if pos < self.in_flight {
            self.in_flight -= 1;
            self.in_flight_bytes = self.in_flight_bytes.saturating_sub(entry.envelope.len());
        }
        self.failed = false;
        self.backoff.reset();
        self.push_window_now = (self.push_window_now + 1).min(self.config.push_window);
        if self.healing.get(&push_id) != Some(&cursor) {
            // Stored anew: a later audit judges that place afresh. Acknowledged at the same place
            // (a restored backup may hold it there again), the next audit decides.
            self.healing.remove(&push_id);
        }
        // The acknowledged cursor is durable at the relay: its head can never honestly be lower.
        self.highest_head = self.highest_head.max(cursor);
        if let Some(displaced) = self.own_sent.insert(cursor, entry).filter(|e| e.push_id != push_id) {
            // A blob of ours acknowledged there in an earlier history (a restore hands the
            // cursor out again): the relay lost it.
            self.event(ClientEvent::LostAtRelay { push_id: displaced.push_id, cursor });
            self.requeue(vec![displaced]);
        }
        self.event(ClientEvent::PushAcked { push_id, cursor });
        true
    }

    /// Marks acknowledged pushes sent in the store, with the highest head seen (one write at a
    /// time; acknowledgements arriving meanwhile go in the next).
    pub(super) fn flush_sent(&mut self) {
        if self.marking || self.acked.is_empty() {
            return;
        }
        self.marking = true;
        let acked = std::mem::take(&mut self.acked);
        self.store(ClientStoreOp::MarkSent { acked, highest_head: self.highest_head }, OpKind::MarkSent);
    }

    /// Asks for the next page if there is anything to fetch and nothing in progress.
    pub(super) fn pull_now(&mut self) {
        if !self.phase.is_online() || self.pulling || self.delivering {
            return;
        }
        self.pulling = true;
        self.send_frame(&Frame::Pull(Pull { after: self.fetch_pos, limit: self.config.pull_page }));
    }

    pub(super) fn on_notify(&mut self, cursor: u64) {
        self.head = self.head.max(cursor);
        if cursor > self.fetch_pos {
            self.pull_now();
        }
    }

    pub(super) fn on_truncated(&mut self, earliest: u64) {
        self.pulling = false;
        self.event(ClientEvent::Truncated { earliest });
        self.forget_pruned(earliest);
        let from = earliest.saturating_sub(1);
        if from > self.fetch_pos {
            // The history in between is gone: take the relay's word for the log there, and
            // start each sender's chain at its first blob from here on.
            self.fetch_pos = from;
            self.log.restart(None);
            self.receiver.set_trust_floor(earliest);
        }
        self.receiver.clear_gap();
        self.dropped_from = None;
        self.persist_page(Vec::new());
    }

    pub(super) fn on_blobs(&mut self, page: Blobs) {
        if self.delivering || page.after != self.fetch_pos {
            // A late answer to a pull made before the fetch position moved.
            return;
        }
        self.pulling = false;
        self.failed = false;
        self.head = self.head.max(page.max_cursor);
        if page.max_cursor > self.highest_head {
            self.highest_head = page.max_cursor;
        }
        if let logview::PageCheck::Forked { known } = self.log.check_page(&page.prev_chain) {
            return self.recover_from_fork((known, page.prev_chain));
        }
        self.log.start_page(page.after, page.prev_chain);
        self.unchecked = false;
        let mut delivered: Vec<ReceivedBlob> = Vec::new();
        let me = self.config.device.device_id();
        let mut complete = true;
        // Cursors of this device's acknowledged blobs the page holds intact.
        let mut served_own = Vec::new();
        // This device's unacknowledged pushes the page holds.
        let mut seen_unacked = Vec::new();
        for stored in page.blobs {
            if stored.cursor <= self.fetch_pos || stored.cursor > page.max_cursor {
                self.event(ClientEvent::RelayMisbehaved { cursor: stored.cursor });
                complete = false;
                break;
            }
            if !self.log.verify(&stored) {
                // Not the blob the relay committed to at this place in its log.
                let opens = self.cipher.as_ref().is_some_and(|c| c.open(&stored.envelope).is_ok());
                let cursor = stored.cursor;
                self.event(if opens {
                    ClientEvent::RelayMisbehaved { cursor }
                } else {
                    ClientEvent::Tampered { cursor }
                });
                let fingerprint = (cursor, served_hash(&stored));
                if self.rejected != Some(fingerprint) {
                    self.rejected = Some(fingerprint);
                    complete = false;
                    break;
                }
                // Served the same way twice: broken at rest, not in flight. Skip it: its fields
                // outside the envelope (push id, time) are unverifiable now. Its sender's
                // self-audit finds it missing and pushes it again.
                self.log.skip(&stored);
                self.fetch_pos = cursor;
                continue;
            }
            self.fetch_pos = stored.cursor;
            if self
                .own_sent
                .get(&stored.cursor)
                .is_some_and(|e| e.push_id == stored.push_id && e.envelope == stored.envelope.0)
            {
                served_own.push(stored.cursor);
            }
            let Some(cipher) = &self.cipher else { return };
            let blob = match cipher.open(&stored.envelope) {
                Ok(b) => b,
                Err(_) => {
                    self.event(ClientEvent::Tampered { cursor: stored.cursor });
                    continue;
                }
            };
            if blob.sender == me {
                if blob.seq >= self.next_seq {
                    self.event(ClientEvent::RelayMisbehaved { cursor: stored.cursor });
                } else if self.outbox.iter().any(|e| e.push_id == stored.push_id && e.envelope == stored.envelope.0) {
                    // Stored, but its acknowledgement was lost: the log acknowledges it.
                    seen_unacked.push((stored.push_id, stored.cursor));
                } else if served_own.last() == Some(&stored.cursor) {
                    // Marked sent again with the page (its `MarkSent` may have failed): once
                    // this device acknowledges the page the relay may prune the blob, and a
                    // resend of it could no longer be recognised.
                    self.page_sent.push((stored.push_id, stored.cursor));
                }
                continue;
            }
            let sender = blob.sender;
            let incoming =
                Incoming { cursor: stored.cursor, push_id: stored.push_id, stored_at_ms: stored.stored_at_ms, blob };
            match self.receiver.receive(incoming) {
                Verdict::Applied(blobs) => {
                    self.progress_since_drop = true;
                    delivered.extend(blobs);
                }
                Verdict::Duplicate | Verdict::Buffered => {}
                Verdict::Overflow => {
                    // Read on to the head (a gap may close there, or is given up), and read the
                    // dropped blobs again afterwards; the durable cursor stays below them
                    // meanwhile. (Fetching again at once re-read the same stretch for ever when
                    // more blobs than the buffer holds followed a hole.)
                    if self.dropped_from.is_none() {
                        self.progress_since_drop = false;
                    }
                    self.dropped_from.get_or_insert(stored.cursor);
                }
                Verdict::Equivocation { seq, known, got } => {
                    self.event(ClientEvent::Equivocation { sender, seq, cursor: stored.cursor, proof: (known, got) });
                }
            }
        }
        for (sender, seq, cursor) in self.receiver.take_trust_points() {
            self.event(ClientEvent::TrustPoint { sender, seq, cursor });
        }
        if !complete {
            self.page_rejected = true;
            self.retry_at = Some(self.now.mono + self.backoff.next(&mut self.rng));
        } else if !page.has_more && self.fetch_pos < page.max_cursor {
            self.fetch_pos = page.max_cursor;
        }
        for (push_id, cursor) in seen_unacked {
            if self.acknowledged(push_id, cursor) {
                self.page_sent.push((push_id, cursor));
                served_own.push(cursor);
            }
        }
        self.audit_own(page.after, self.fetch_pos, &served_own);
        self.persist_page(delivered);
    }

    /// At the head, with blobs dropped by the full gap buffer: once a blob applied since the
    /// first of them was dropped (a gap closed) or a gap was given up, reads again from below
    /// them and everything still buffered. Else it waits (the gap is reported, then given up),
    /// so each reading again follows progress, and they end. Returns whether it reads again.
    fn fetch_dropped_again(&mut self) -> bool {
        if self.dropped_from.is_none() || !self.progress_since_drop {
            return false;
        }
        self.fetch_pos = self.durable_target().max(self.cursor);
        self.dropped_from = None;
        self.receiver.clear_gap();
        self.log.fetch_from(self.fetch_pos);
        true
    }

    /// The self-audit: every acknowledged blob of this device in the stretch of log just read,
    /// `(after, to]`, must be there, byte for byte. Whatever the relay lost or altered is pushed
    /// again (once per relay answer: a relay that acknowledges it again at the same cursor and
    /// still does not serve it is reported instead).
    fn audit_own(&mut self, after: u64, to: u64, served: &[u64]) {
        if to <= after {
            return;
        }
        for cursor in served {
            if let Some(entry) = self.own_sent.get(cursor) {
                self.healing.remove(&entry.push_id);
            }
        }
        let lost: Vec<u64> =
            self.own_sent.range(after + 1..=to).map(|(c, _)| *c).filter(|c| !served.contains(c)).collect();
        let mut again = Vec::new();
        for cursor in lost {
            let Some(entry) = self.own_sent.get(&cursor) else { continue };
            if self.healing.get(&entry.push_id) == Some(&cursor) {
                // Pushed again, acknowledged at the same place, and still not served there.
                self.event(ClientEvent::RelayMisbehaved { cursor });
                continue;
            }
            let push_id = entry.push_id;
            self.healing.insert(push_id, cursor);
            self.event(ClientEvent::LostAtRelay { push_id, cursor });
            again.extend(self.own_sent.remove(&cursor));
        }
        self.requeue(again);
    }

    /// The cursor that may become durable: below any blob still held in the gap buffer, or
    /// dropped from it to be read again.
    fn durable_target(&self) -> u64 {
        [self.receiver.lowest_buffered_cursor(), self.dropped_from]
            .into_iter()
            .flatten()
            .map(|c| c.saturating_sub(1))
            .fold(self.fetch_pos, u64::min)
    }

    fn persist_page(&mut self, blobs: Vec<ReceivedBlob>) {
        let cursor = self.durable_target().max(self.cursor);
        if blobs.is_empty() && cursor == self.cursor && self.page_sent.is_empty() {
            return self.after_page();
        }
        self.delivering = true;
        let log_chain = self.log.chain_at(cursor);
        let request = ClientStoreOp::Deliver {
            blobs: blobs.clone(),
            cursor,
            log_chain,
            senders: self.receiver.staged_views(),
            highest_head: self.highest_head,
            trust_floor: self.receiver.trust_floor(),
            sent: std::mem::take(&mut self.page_sent),
        };
        self.store(request, OpKind::Deliver { cursor, log_chain, blobs });
    }

    pub(super) fn delivered(
        &mut self,
        cursor: u64,
        log_chain: Option<[u8; 32]>,
        blobs: Vec<ReceivedBlob>,
        result: super::StoreResult,
    ) {
        self.delivering = false;
        match result {
            Ok(()) => {
                self.receiver.commit();
                if cursor >= self.cursor {
                    self.cursor = cursor;
                    self.log.commit(cursor, log_chain);
                    if self.fetch_pos < cursor {
                        self.fetch_pos = cursor;
                        self.log.fetch_from(cursor);
                    }
                }
                for b in &blobs {
                    self.event(ClientEvent::BlobAvailable { cursor: b.cursor, push_id: b.push_id, sender: b.sender });
                }
                self.send_frame(&Frame::Ack(Ack { cursor: self.cursor }));
                self.after_page();
            }
            Err(_) => {
                self.receiver.rollback();
                self.dropped_from = None;
                self.fetch_pos = self.cursor;
                self.log.fetch_from(self.cursor);
                self.failed = true;
                self.retry_at = Some(self.now.mono + self.backoff.next(&mut self.rng));
            }
        }
    }

    fn after_page(&mut self) {
        if std::mem::take(&mut self.page_rejected) {
            return self.progress();
        }
        if self.fetch_pos < self.head || self.unchecked || self.fetch_dropped_again() {
            return self.pull_now();
        }
        if self.receiver.buffered() == 0 {
            self.give_up_at = None;
            self.gap_overdue = false;
            self.withheld_reported = false;
        } else {
            if std::mem::take(&mut self.gap_overdue) {
                return self.give_up_gaps();
            }
            // Read to the head with a gap open: report it, and wait for its sender to push it
            // again (its self-audit) for at most the patience.
            self.give_up_at.get_or_insert(self.now.mono + self.config.gap_patience);
            if !self.withheld_reported {
                self.withheld_reported = true;
                for (sender, missing_seq) in self.receiver.missing() {
                    self.event(ClientEvent::Withheld { sender, missing_seq });
                }
            }
        }
        self.progress();
    }

    /// The patience for the gaps open at the head ran out: give up on them now, or once this
    /// device is back at the head with them (a page is on its way or being saved, or a
    /// reconnect emptied the gap buffer to read it again).
    pub(super) fn gap_patience_over(&mut self) {
        self.give_up_at = None;
        if self.delivering || self.pulling || self.receiver.buffered() == 0 {
            self.gap_overdue = true;
        } else {
            self.give_up_gaps();
        }
    }

    /// Each sender with buffered blobs goes on from its lowest one, and what was missing before
    /// it is reported lost.
    fn give_up_gaps(&mut self) {
        self.withheld_reported = false;
        let (applied, lost) = self.receiver.give_up();
        self.progress_since_drop = true;
        for (sender, from_seq, to_seq) in lost {
            self.event(ClientEvent::BlobsLost { sender, from_seq, to_seq });
        }
        self.persist_page(applied);
    }

    pub(super) fn create_group(&mut self, admission_token: Option<Vec<u8>>) -> Result<(), CommandError> {
        if self.membership.is_some() || self.saving_membership {
            return Err(CommandError::AlreadyInGroup);
        }
        let membership = Membership {
            group_id: GroupId::random(&mut self.rng),
            epoch: 0,
            epoch_secret: EpochSecret::random(&mut self.rng),
            access_key: NoiseKeypair::generate(&mut self.rng),
            relay: self.config.relay.clone(),
            pending_creation: Some(super::PendingCreation { admission_token }),
            introduced: Vec::new(),
        };
        self.enabled = true;
        self.save_membership(membership, false);
        Ok(())
    }

    /// Persists a membership; it takes effect (pushes, connections) only once durable, so
    /// nothing is ever sealed for a group this device could forget in a crash.
    pub(super) fn save_membership(&mut self, membership: Membership, joined: bool) {
        self.saving_membership = true;
        let request = ClientStoreOp::SaveMembership(Box::new(membership.clone()));
        self.store(request, OpKind::SaveMembership { membership: Box::new(membership), joined });
    }

    fn adopt(&mut self, m: Membership) {
        self.cipher = Some(BlobCipher::new(&m.group_id, m.epoch, &m.epoch_secret));
        self.membership = Some(m);
    }

    pub(super) fn membership_saved(&mut self, membership: Membership, joined: bool, result: super::StoreResult) {
        self.saving_membership = false;
        if result.is_err() {
            // Nothing changed: a first membership was not taken (and can be tried again); a
            // failed confirmation of creation is retried, idempotently, at the next connection.
            if joined {
                self.pairing_storage_failed();
            }
            return;
        }
        let first = self.membership.is_none();
        self.adopt(membership);
        if first {
            self.event(ClientEvent::GroupReady);
        }
        if joined {
            self.pairing_joined();
        }
        self.connect_now();
    }

    /// The default relay (for creating groups and joining with a short code).
    pub(super) fn default_relay(&self) -> RelayInfo {
        self.config.relay.clone()
    }
}

/// A hash of how a blob was served (everything but its cursor), without copying the envelope.
fn served_hash(blob: &crate::wire::StoredBlob) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&blob.chain).update(&blob.push_id).update(&blob.stored_at_ms.to_le_bytes()).update(&blob.envelope);
    *h.finalize().as_bytes()
}
