//! The invariants, checked as the simulation runs (design §8): nothing acknowledged is lost,
//! each blob is applied once per device in per-sender order and unaltered, cursors are never
//! reused, the relay accepts no duplicate, an honest relay stores each device's pushes in the
//! order it made them, no (key, nonce) pair repeats, buffers stay bounded; and after the heal
//! phase every device has converged.

use std::collections::{BTreeMap, BTreeSet};

use zerok_core::client::{ClientEvent, ClientStoreOp, SyncStatus};
use zerok_core::keys::DeviceId;
use zerok_core::relay::{RelayStoreOp, RelayStoreResult};

use crate::world::{Observer, World};

/// What a device had durably seen of the relay's log when the relay rewrote it.
#[derive(Clone, Copy, Debug)]
struct SeenHistory {
    device: usize,
    cursor: u64,
    chain: [u8; 32],
    reports_before: u64,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

/// Ground truth and running checks.
#[derive(Default)]
pub struct Checker {
    /// Payload hash and sending device of every push the app made.
    pub pushes: BTreeMap<[u8; 16], ([u8; 32], usize)>,
    /// Envelope hash of every push durably in a device outbox.
    outboxed: BTreeMap<[u8; 16], [u8; 32]>,
    /// Envelope hash by nonce: one nonce must never seal two different envelopes.
    nonces: BTreeMap<[u8; 24], [u8; 32]>,
    /// Cursor of every acknowledged push.
    pub acked: BTreeMap<[u8; 16], u64>,
    /// Each push's place among its device's pushes, and the highest place stored so far.
    push_order: BTreeMap<[u8; 16], (usize, u64)>,
    stored_order: BTreeMap<usize, u64>,
    pushes_made: BTreeMap<usize, u64>,
    relay_cursors: BTreeMap<u64, [u8; 16]>,
    relay_push_ids: BTreeMap<[u8; 16], u64>,
    verified: BTreeSet<[u8; 16]>,
    last_applied: BTreeMap<(usize, DeviceId), u64>,
    /// Reported trust points and blobs given up (device, sender, seq): where a sender's chain
    /// may start anew.
    trust_points: BTreeSet<(usize, DeviceId, u64)>,
    delivered: BTreeMap<usize, BTreeSet<[u8; 16]>>,
    /// Invite short codes seen, for the workload.
    pub invites: Vec<(usize, String)>,
    /// `Tampered` reports.
    pub tampered_reports: u64,
    /// Tampered reports by (device, cursor).
    pub tampered_seen: BTreeSet<(usize, u64)>,
    /// Blobs corrupted at rest: cursor, and each device's cursor at that moment (None: not
    /// a member then). Every device that later moves past it must report it.
    pub corrupted: Vec<(u64, Vec<Option<u64>>)>,
    /// `Rollback` reports.
    pub rollback_reports: u64,
    /// `Forked` reports.
    pub fork_reports: u64,
    /// `Rollback` and `Forked` reports by device.
    history_reports: BTreeMap<usize, u64>,
    /// Each device's durable view of the log (cursor, chain value) and its report count when
    /// it adopted that view: a report since then shows it noticed that view being rewritten.
    views: BTreeMap<usize, (u64, Option<[u8; 32]>, u64)>,
    /// For each rewrite of the relay's history (rollback, fork): each member's durable
    /// cursor, its chain value there, and its reports so far. A device whose history the
    /// relay rewrote must report it.
    rewrites: Vec<Vec<SeenHistory>>,
    /// The relay misbehaves on purpose: its own promises (durability, cursors) are void, and
    /// only what devices guarantee by themselves is checked.
    pub adversarial: bool,
    /// The honest relay's store was damaged at rest (a backup restored, a row deleted or
    /// altered): devices rightly report what it lost, and its own past promises (the cursors
    /// it acknowledged, never reusing one) hold only for what survived.
    pub damaged: bool,
    /// Acknowledged pushes the relay lost to damage: their pushers must push them again.
    /// (The cursor it was acknowledged at.)
    lost_to_damage: BTreeMap<[u8; 16], u64>,
    /// Pushes pruned before a damage (every member had them): a backup restored later may
    /// lack them, and nobody holds them to push again.
    settled: BTreeSet<[u8; 16]>,
    /// Steps at which a device's gap buffer was full (so later early blobs were dropped).
    pub full_gap_buffers: u64,
    /// Sequence numbers given up by (device, sender), still to be applied late and in order.
    given_up: BTreeSet<(usize, DeviceId, u64)>,
    violations: Vec<Violation>,
}

impl Checker {
    /// Records a push the app asked for.
    pub fn pushed(&mut self, device: usize, push_id: [u8; 16], payload: &[u8]) {
        self.pushes.insert(push_id, (*blake3::hash(payload).as_bytes(), device));
        let made = self.pushes_made.entry(device).or_insert(0);
        self.push_order.insert(push_id, (device, *made));
        *made += 1;
    }

    /// How many trust points devices reported.
    pub fn trust_point_reports(&self) -> u64 {
        self.trust_points.len() as u64
    }

    fn fail(&mut self, msg: String) {
        self.violations.push(Violation(msg));
    }

    /// The first violation seen, if any.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }

    /// Checks the world's current state against everything acknowledged so far.
    pub fn check_world(&mut self, world: &World) {
        if self.adversarial {
            return self.check_bounds(world);
        }
        for (push_id, cursor) in &self.acked {
            let group = world.store.groups.values().find(|g| g.blobs.contains_key(cursor) || *cursor < g.earliest);
            let stored = group.and_then(|g| g.blobs.get(cursor));
            if stored.is_none() && group.is_some_and(|g| *cursor < g.earliest) {
                // Pruned by retention (the relay's tests check it waits for every member).
                continue;
            }
            match stored {
                Some(b) if b.push_id == *push_id => {
                    if self.verified.contains(push_id) {
                        continue;
                    }
                    if self.outboxed.get(push_id).is_some_and(|h| *h != *blake3::hash(&b.envelope).as_bytes()) {
                        self.violations.push(Violation(format!("acked push at cursor {cursor} is not byte-identical")));
                    }
                    self.verified.insert(*push_id);
                }
                Some(_) => self.violations.push(Violation(format!("acked cursor {cursor} holds another push"))),
                None => self.violations.push(Violation(format!("acked blob at cursor {cursor} is lost"))),
            }
        }
        self.check_synced_views(world);
        self.check_bounds(world);
    }

    /// The honest relay's store was damaged and repaired (`before` is what it held): forget
    /// the relay's promises about what it lost. Returns the rows lost.
    pub fn relay_damaged(&mut self, before: &crate::stores::RelayStore, world: &World) -> u64 {
        self.damaged = true;
        let store = &world.store;
        let pruned = |cursor: u64| before.groups.values().any(|g| cursor < g.earliest.max(1));
        // Pruned before the damage, every member had it: settled for good, whatever a restored
        // backup holds (its pusher forgot it once it was pruned).
        let settled: Vec<[u8; 16]> = self.acked.iter().filter(|(_, c)| pruned(**c)).map(|(p, _)| *p).collect();
        for push_id in settled {
            self.acked.remove(&push_id);
            self.settled.insert(push_id);
        }
        let held = |push_id: &[u8; 16], cursor: u64| {
            store.groups.values().any(|g| g.blobs.get(&cursor).is_some_and(|b| b.push_id == *push_id))
        };
        let lost: Vec<([u8; 16], u64)> =
            self.acked.iter().filter(|(p, c)| !held(p, **c)).map(|(p, c)| (*p, *c)).collect();
        for (push_id, cursor) in lost {
            self.acked.remove(&push_id);
            self.verified.remove(&push_id);
            self.lost_to_damage.insert(push_id, cursor);
        }
        // A backup restored over a damaged store can bring back what an earlier damage lost.
        let back: Vec<([u8; 16], u64)> = self
            .lost_to_damage
            .keys()
            .filter_map(|p| store.groups.values().find_map(|g| g.blobs.values().find(|b| b.push_id == *p)))
            .map(|b| (b.push_id, b.cursor))
            .collect();
        for (push_id, cursor) in back {
            self.lost_to_damage.remove(&push_id);
            self.acked.insert(push_id, cursor);
        }
        // A restored backup hands out again the cursors above its head.
        let head = store.groups.values().map(|g| g.head).max().unwrap_or(0);
        let kept = |p: &[u8; 16], c: u64| held(p, c) || (pruned(c) && c <= head);
        self.relay_cursors.retain(|c, p| kept(p, *c));
        // Nor can it recognise a resend of what it pruned (its pusher may not have heard yet).
        self.relay_push_ids.retain(|p, c| held(p, *c));
        self.stored_order.clear();
        let rows = |s: &crate::stores::RelayStore| s.groups.values().map(|g| g.blobs.len() as u64).sum::<u64>();
        rows(before).saturating_sub(rows(store))
    }

    /// A device that says it is synced has checked its view of the log against the relay's:
    /// its durable chain value at its cursor is the relay's there.
    fn check_synced_views(&mut self, world: &World) {
        for (i, d) in world.devices.iter().enumerate() {
            let (Some(c), Some(m), Some(chain)) = (&d.client, &d.store.state.membership, d.store.state.log_chain)
            else {
                continue;
            };
            if c.status() != SyncStatus::Synced || c.is_paused() {
                continue;
            }
            let group_id = *m.group_id.expose();
            let Some(g) = world.store.groups.get(&group_id) else { continue };
            let cursor = d.store.state.cursor;
            if cursor + 1 < g.earliest {
                continue;
            }
            let relay = g.chain_at(cursor).unwrap_or_else(|| zerok_core::log::genesis(&group_id));
            if cursor > g.head || relay != chain {
                self.fail(format!(
                    "device {i} says synced on a view of the log the relay no longer has (cursor {cursor})"
                ));
            }
        }
    }

    fn check_bounds(&mut self, world: &World) {
        for (i, d) in world.devices.iter().enumerate() {
            let Some(c) = &d.client else { continue };
            if c.gap_buffered() > d.config.gap_blobs {
                self.violations.push(Violation(format!("device {i}: gap buffer over its bound")));
            }
            self.full_gap_buffers += u64::from(c.gap_buffered() == d.config.gap_blobs);
        }
    }

    /// The relay is about to rewrite its history: remember what each member has seen.
    pub fn history_rewritten(&mut self, world: &World) {
        let seen = world
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.store.state.membership.is_some())
            .filter_map(|(i, d)| {
                let chain = d.store.state.log_chain?;
                let reports_before = match self.views.get(&i) {
                    Some((c, Some(ch), since)) if (*c, *ch) == (d.store.state.cursor, chain) => *since,
                    _ => self.history_reports.get(&i).copied().unwrap_or(0),
                };
                Some(SeenHistory { device: i, cursor: d.store.state.cursor, chain, reports_before })
            })
            .collect();
        self.rewrites.push(seen);
    }

    /// Every device whose durable view of the relay's log is not part of the final log
    /// reported a rollback or a fork.
    fn check_rewrites_reported(&mut self, world: &World) {
        for seen in &self.rewrites {
            for &SeenHistory { device: d, cursor, chain, reports_before } in seen {
                let Some(m) = &world.devices[d].store.state.membership else { continue };
                let group_id = *m.group_id.expose();
                let Some(g) = world.store.groups.get(&group_id) else { continue };
                if !g.keys.contains(&m.access_key.public().0) {
                    // The rewritten history forgot this device: it is refused, not misled.
                    continue;
                }
                if cursor + 1 < g.earliest {
                    continue;
                }
                let now = g.chain_at(cursor).unwrap_or_else(|| zerok_core::log::genesis(&group_id));
                let rewritten = cursor > g.head || now != chain;
                let reported = self.history_reports.get(&d).copied().unwrap_or(0) > reports_before;
                if rewritten && !reported {
                    self.violations.push(Violation(format!(
                        "device {d} was shown another history at cursor {cursor} and did not notice"
                    )));
                }
            }
        }
    }

    /// After the heal phase: everything converged.
    pub fn check_converged(&mut self, world: &World) {
        if self.adversarial {
            self.check_rewrites_reported(world);
            return self.check_corruption_reported(world);
        }
        for push_id in self.outboxed.keys() {
            if !self.acked.contains_key(push_id)
                && !self.settled.contains(push_id)
                && !self.pruned_since(push_id, world)
            {
                let what = if self.lost_to_damage.contains_key(push_id) {
                    "a push the relay lost to damage was never pushed again"
                } else {
                    "a durably queued push was never acknowledged"
                };
                let pusher = self.pushes.get(push_id).map(|(_, d)| *d);
                let kept = pusher.map(|d| {
                    let state = &world.devices[d].store.state;
                    let sent = state.sent.values().any(|e| e.push_id == *push_id);
                    let queued = state.outbox.iter().any(|e| e.push_id == *push_id);
                    (sent, queued)
                });
                let was = self.lost_to_damage.get(push_id);
                self.violations.push(Violation(format!(
                    "{what} (push {:?}, acknowledged at cursor {was:?}, pushed by device {pusher:?}; (in its sent \
                     log, in its outbox): {kept:?})",
                    &push_id[..4]
                )));
                break;
            }
        }
        for (i, d) in world.devices.iter().enumerate() {
            let Some(c) = &d.client else { continue };
            if c.membership().is_none() {
                continue;
            }
            if c.status() != SyncStatus::Synced {
                self.violations.push(Violation(format!("device {i} ends {:?}, not synced", c.status())));
            }
            let got = self.delivered.get(&i).cloned().unwrap_or_default();
            // Below its trust floor the relay had pruned history before this device read it.
            let floor = d.store.state.trust_floor;
            let missing: Vec<u64> = self
                .acked
                .iter()
                .filter(|(p, _)| self.pushes.get(*p).is_some_and(|(_, from)| *from != i))
                .filter(|(p, cursor)| **cursor >= floor && !got.contains(*p))
                .map(|(_, cursor)| *cursor)
                .collect();
            if !missing.is_empty() {
                let n = missing.len();
                self.violations.push(Violation(format!(
                    "device {i} misses {n} blobs after healing (at cursors {missing:?}; its trust floor {floor})"
                )));
            }
        }
    }
}

impl Checker {
    /// Every device that moved past a blob corrupted at rest reported it.
    fn check_corruption_reported(&mut self, world: &World) {
        let hidden = world.adversary.as_ref().map(|a| a.hidden.clone()).unwrap_or_default();
        for (cursor, before) in self.corrupted.iter().filter(|(c, _)| !hidden.contains(c)) {
            for (d, was) in before.iter().enumerate() {
                let Some(was) = was else { continue };
                let now = world.devices[d].store.state.cursor;
                if *was < *cursor && now >= *cursor && !self.tampered_seen.contains(&(d, *cursor)) {
                    self.violations.push(Violation(format!("device {d} passed corrupted cursor {cursor} silently")));
                }
            }
        }
    }
}

impl Observer for Checker {
    fn device_event(&mut self, device: usize, event: &ClientEvent) {
        match event {
            ClientEvent::PushAcked { push_id, cursor } => {
                if let Some(old) = self.acked.insert(*push_id, *cursor)
                    && old != *cursor
                    && !self.adversarial
                {
                    self.fail(format!("push acknowledged at cursors {old} and {cursor}"));
                }
            }
            ClientEvent::InviteReady { short_code, .. } => self.invites.push((device, short_code.clone())),
            ClientEvent::Tampered { .. }
            | ClientEvent::Rollback { .. }
            | ClientEvent::Forked { .. }
            | ClientEvent::Equivocation { .. }
            | ClientEvent::RelayMisbehaved { .. }
            | ClientEvent::LostAtRelay { .. }
            | ClientEvent::BlobsLost { .. }
                if !self.adversarial && !self.damage_explains(event) =>
            {
                self.fail(format!("device {device} accuses an honest relay: {event:?}"));
            }
            ClientEvent::TrustPoint { sender, seq, .. } => {
                self.trust_points.insert((device, *sender, *seq));
            }
            // Given up on (an adversarial relay withheld them): the chain may jump past them.
            ClientEvent::BlobsLost { sender, from_seq, to_seq } => {
                self.trust_points.insert((device, *sender, to_seq + 1));
                self.given_up.extend((*from_seq..=*to_seq).map(|seq| (device, *sender, seq)));
            }
            ClientEvent::Tampered { cursor } => {
                self.tampered_seen.insert((device, *cursor));
                self.tampered_reports += 1;
            }
            ClientEvent::Rollback { .. } => {
                self.rollback_reports += 1;
                *self.history_reports.entry(device).or_insert(0) += 1;
            }
            ClientEvent::Forked { .. } => {
                self.fork_reports += 1;
                *self.history_reports.entry(device).or_insert(0) += 1;
            }
            _ => {}
        }
    }

    fn device_store(&mut self, device: usize, op: &ClientStoreOp, ok: bool) {
        if !ok {
            return;
        }
        match op {
            ClientStoreOp::AppendOutbox { entries, .. } => {
                for e in entries {
                    let hash = *blake3::hash(&e.envelope).as_bytes();
                    self.outboxed.insert(e.push_id, hash);
                    let nonce: [u8; 24] = e.envelope.get(5..29).and_then(|n| n.try_into().ok()).unwrap_or([0; 24]);
                    if self.nonces.insert(nonce, hash).is_some_and(|h| h != hash) {
                        self.fail("a nonce was used twice".into());
                    }
                }
            }
            ClientStoreOp::Deliver { blobs, cursor, log_chain, .. } => {
                let reports = self.history_reports.get(&device).copied().unwrap_or(0);
                let view = self.views.entry(device).or_insert((*cursor, *log_chain, reports));
                if (view.0, view.1) != (*cursor, *log_chain) {
                    *view = (*cursor, *log_chain, reports);
                }
                for b in blobs {
                    let next_late = self.given_up.range((device, b.sender, 0)..=(device, b.sender, u64::MAX)).next();
                    if next_late == Some(&(device, b.sender, b.seq)) {
                        // A blob given up on, arriving late: its sender's chain is already past it.
                        self.given_up.remove(&(device, b.sender, b.seq));
                        self.record_delivery(device, b);
                        continue;
                    }
                    let last = self.last_applied.entry((device, b.sender)).or_insert(0);
                    if b.seq != *last + 1 && !self.trust_points.contains(&(device, b.sender, b.seq)) {
                        let msg = format!("device {device} applied seq {} after {} from one sender", b.seq, last);
                        self.fail(msg);
                    }
                    *self.last_applied.entry((device, b.sender)).or_insert(0) = b.seq;
                    self.record_delivery(device, b);
                }
            }
            _ => {}
        }
    }

    fn relay_store(&mut self, op: &RelayStoreOp, result: &RelayStoreResult) {
        if self.adversarial {
            return;
        }
        if let (RelayStoreOp::Append { push_id, .. }, RelayStoreResult::Stored { cursor, .. }) = (op, result) {
            if let Some(previous) = self.relay_cursors.insert(*cursor, *push_id)
                && previous != *push_id
            {
                self.verified.remove(&previous);
                self.fail(format!("cursor {} reused for another push", *cursor));
            }
            if let Some(first) = self.relay_push_ids.insert(*push_id, *cursor)
                && first != *cursor
            {
                self.fail(format!("the relay accepted a duplicate push (cursor {first}, again at {})", *cursor));
            }
            // A push the relay lost to damage is pushed again once its pusher finds it missing,
            // after newer ones.
            let order = self.push_order.get(push_id).filter(|_| !self.lost_to_damage.contains_key(push_id));
            if let Some(&(device, place)) = order {
                let highest = *self.stored_order.entry(device).or_insert(place);
                if place < highest {
                    self.fail(format!(
                        "device {device}'s push {place} stored at cursor {} after its push {highest}",
                        *cursor
                    ));
                }
                self.stored_order.insert(device, highest.max(place));
            }
        }
    }
}

impl Checker {
    /// A blob applied by `device`: once, and as its pusher pushed it.
    fn record_delivery(&mut self, device: usize, b: &zerok_core::client::ReceivedBlob) {
        if !self.delivered.entry(device).or_default().insert(b.push_id) {
            self.fail(format!("device {device} applied a blob twice"));
        }
        match self.pushes.get(&b.push_id) {
            Some((hash, _)) if *hash == *blake3::hash(&b.payload).as_bytes() => {}
            _ => self.fail(format!("device {device} applied a blob nobody pushed, or altered")),
        }
    }

    /// A push the relay lost to damage, whose place the relay pruned since, after every member
    /// but its pusher had applied it: nobody needs it pushed again (a device that joins later
    /// starts after pruned history).
    fn pruned_since(&self, push_id: &[u8; 16], world: &World) -> bool {
        let Some(cursor) = self.lost_to_damage.get(push_id) else { return false };
        let pusher = self.pushes.get(push_id).map(|(_, d)| *d);
        let earliest = world.store.groups.values().map(|g| g.earliest).max().unwrap_or(1);
        *cursor < earliest
            && world.devices.iter().enumerate().all(|(i, d)| {
                Some(i) == pusher
                    || d.store.state.membership.is_none()
                    || d.store.state.trust_floor > *cursor
                    || self.delivered.get(&i).is_some_and(|got| got.contains(push_id))
            })
    }

    fn damage_explains(&self, event: &ClientEvent) -> bool {
        self.damaged && self.reports_damage(event)
    }

    /// What a device rightly reports when an honest relay's store lost history: the head went
    /// back, the log was linked again, one of its own blobs is missing, or blobs it waited on
    /// too long are given up for now.
    fn reports_damage(&self, event: &ClientEvent) -> bool {
        match event {
            ClientEvent::Rollback { .. } | ClientEvent::Forked { .. } | ClientEvent::LostAtRelay { .. } => true,
            // Provisional: a device waiting on a blob whose pusher is away gives up, and applies
            // the blob when its pusher pushes it again (the convergence check holds it to that).
            ClientEvent::BlobsLost { .. } => true,
            _ => false,
        }
    }
}
