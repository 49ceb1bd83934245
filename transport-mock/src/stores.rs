//! Simulated durable stores. An operation takes effect only when it completes; a crash loses
//! every operation still in flight (unsynced writes) and keeps everything completed.

use std::collections::BTreeMap;

use zerok_core::client::{ClientState, ClientStoreOp, ReceivedBlob};
use zerok_core::io::StoreError;
use zerok_core::relay::{ChainCheck, GroupSnapshot, RESTORED_PUSH_IDS, RelayStoreOp, RelayStoreResult, next_blob};
use zerok_core::wire::StoredBlob;

/// One group's durable rows at the relay.
#[derive(Clone, Debug, Default)]
pub struct StoredGroup {
    /// Registered access keys.
    pub keys: Vec<[u8; 32]>,
    /// Blobs by cursor.
    pub blobs: BTreeMap<u64, StoredBlob>,
    /// The highest cursor ever stored (survives pruning).
    pub head: u64,
    /// The log chain value at `head` (survives pruning).
    pub head_chain: Option<[u8; 32]>,
    /// The log chain value of the highest pruned blob.
    pub pruned_chain: Option<[u8; 32]>,
    /// Acknowledged cursors per key.
    pub acked: BTreeMap<[u8; 32], u64>,
    /// Oldest retained cursor.
    pub earliest: u64,
}

impl StoredGroup {
    /// What a relay loads of the group, with its `recent` newest push ids.
    pub fn snapshot(&self, group_id: &[u8; 32], recent: usize) -> GroupSnapshot {
        let mut recent: Vec<_> = self.blobs.values().rev().take(recent).map(|b| (b.push_id, b.cursor)).collect();
        recent.reverse();
        GroupSnapshot {
            group_id: *group_id,
            keys: self.keys.clone(),
            head: self.head,
            chain: self.head_chain,
            earliest: self.earliest.max(1),
            bytes: self.blobs.values().map(|b| b.envelope.len() as u64).sum(),
            blobs: self.blobs.len() as u64,
            acked: self.acked.iter().map(|(k, c)| (*k, *c)).collect(),
            recent,
        }
    }

    /// The log chain value at `cursor`: of the highest blob at or below it, else of the last
    /// pruned one (`None`: nothing at or below it was ever stored).
    pub fn chain_at(&self, cursor: u64) -> Option<[u8; 32]> {
        self.blobs.range(..=cursor).next_back().map(|(_, b)| b.chain).or(self.pruned_chain)
    }
}

/// The relay's durable store: groups and their blobs.
#[derive(Clone, Debug, Default)]
pub struct RelayStore {
    /// Durable groups.
    pub groups: BTreeMap<[u8; 32], StoredGroup>,
    /// Operations fail with `Full` while set.
    pub full: bool,
    /// Planted bug: appends are not deduplicated by push id.
    pub skip_dedupe: bool,
    /// Planted bug: the next append reuses the head's cursor (set when the store reopens).
    pub reuse_cursor_once: bool,
}

impl RelayStore {
    /// Applies one operation (at its completion time).
    pub fn apply(&mut self, op: &RelayStoreOp) -> RelayStoreResult {
        let read_only = matches!(op, RelayStoreOp::Read { .. } | RelayStoreOp::LoadGroup { .. });
        // A store finds a push already stored without writing anything, full or not.
        let duplicate = match op {
            RelayStoreOp::Append { group_id, push_id, .. } if !self.skip_dedupe => {
                self.groups.get(group_id).and_then(|g| g.blobs.values().find(|b| b.push_id == *push_id))
            }
            _ => None,
        };
        if let Some(b) = duplicate {
            return RelayStoreResult::Duplicate { cursor: b.cursor };
        }
        if self.full && !read_only {
            return RelayStoreResult::Failed(StoreError::Full);
        }
        match op {
            RelayStoreOp::CreateGroup { group_id, key } => match self.groups.get(group_id) {
                Some(g) if g.keys.contains(key) => RelayStoreResult::Done,
                Some(_) => RelayStoreResult::Failed(StoreError::Io),
                None => {
                    let g = StoredGroup { earliest: 1, keys: vec![*key], ..StoredGroup::default() };
                    self.groups.insert(*group_id, g);
                    RelayStoreResult::Done
                }
            },
            RelayStoreOp::RegisterKey { group_id, key } => match self.groups.get_mut(group_id) {
                Some(g) => {
                    if !g.keys.contains(key) {
                        g.keys.push(*key);
                    }
                    RelayStoreResult::Done
                }
                None => RelayStoreResult::Failed(StoreError::Io),
            },
            RelayStoreOp::Append { group_id, push_id, stored_at_ms, envelope, after } => {
                let Some(g) = self.groups.get_mut(group_id) else { return RelayStoreResult::Failed(StoreError::Io) };
                // A push already stored was answered above, before the full disk.
                if after.is_some_and(|a| !g.blobs.values().any(|b| b.push_id == a)) {
                    return RelayStoreResult::Failed(StoreError::Io);
                }
                let (mut head, mut head_chain) = (g.head, g.head_chain);
                if std::mem::take(&mut self.reuse_cursor_once) && head > 0 {
                    head -= 1;
                    head_chain = g.chain_at(head);
                }
                let blob = next_blob(group_id, head, head_chain, *push_id, *stored_at_ms, envelope.clone());
                // A plain keyed write, as a careless schema would do: reusing a cursor
                // overwrites. The simulation's checks must notice if a store ever does.
                g.blobs.insert(blob.cursor, blob.clone());
                g.head = blob.cursor;
                g.head_chain = Some(blob.chain);
                RelayStoreResult::Stored { cursor: blob.cursor, chain: blob.chain }
            }
            RelayStoreOp::LoadGroup { group_id } => {
                RelayStoreResult::Group(self.groups.get(group_id).map(|g| g.snapshot(group_id, 0)))
            }
            RelayStoreOp::Read { group_id, after, up_to, limit, max_bytes } => {
                let Some(g) = self.groups.get(group_id) else {
                    return RelayStoreResult::Blobs { prev_chain: None, blobs: Vec::new(), more: false };
                };
                let prev_chain = g.chain_at(*after);
                let mut blobs = Vec::new();
                let mut bytes = 0usize;
                let mut more = false;
                for (_, b) in g.blobs.range(after + 1..=*up_to) {
                    if blobs.len() as u32 >= *limit || (!blobs.is_empty() && bytes + b.envelope.len() > *max_bytes) {
                        more = true;
                        break;
                    }
                    bytes += b.envelope.len();
                    blobs.push(b.clone());
                }
                RelayStoreResult::Blobs { prev_chain, blobs, more }
            }
            RelayStoreOp::SaveAck { group_id, key, cursor } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    let a = g.acked.entry(*key).or_insert(0);
                    *a = (*a).max(*cursor);
                }
                RelayStoreResult::Done
            }
            RelayStoreOp::Prune { group_id, all_acked, stored_before_ms } => {
                let Some(g) = self.groups.get_mut(group_id) else { return RelayStoreResult::Failed(StoreError::Io) };
                let min_acked = g.keys.iter().map(|k| g.acked.get(k).copied().unwrap_or(0)).min().unwrap_or(0);
                let before = if *all_acked { min_acked.min(g.head) + 1 } else { 0 };
                let mut pruned = false;
                while let Some(entry) = g.blobs.first_entry() {
                    let b = entry.get();
                    if *entry.key() >= before && b.stored_at_ms >= *stored_before_ms {
                        break;
                    }
                    g.pruned_chain = Some(entry.remove().chain);
                    pruned = true;
                }
                // Only pruning moves it: rows a repair dropped are not pruned history.
                if pruned {
                    g.earliest = g.blobs.keys().next().copied().unwrap_or(g.head + 1).max(g.earliest);
                }
                let bytes = g.blobs.values().map(|b| b.envelope.len() as u64).sum();
                RelayStoreResult::Pruned { earliest: g.earliest, bytes, blobs: g.blobs.len() as u64 }
            }
        }
    }

    /// What a real store does when it opens: checks each group's log chain and repairs a log
    /// damaged at rest. Returns how many rows were dropped.
    pub fn repair(&mut self) -> usize {
        let mut dropped = 0;
        for (group_id, g) in &mut self.groups {
            let mut check = ChainCheck::new(group_id, g.pruned_chain);
            g.blobs.values().for_each(|b| check.row(b));
            let Some(repair) = check.finish(g.head_chain) else { continue };
            for cursor in &repair.dropped {
                g.blobs.remove(cursor);
            }
            for (cursor, chain) in &repair.relinked {
                if let Some(b) = g.blobs.get_mut(cursor) {
                    b.chain = *chain;
                }
            }
            g.head_chain = Some(repair.head_chain);
            dropped += repair.dropped.len();
        }
        dropped
    }

    /// What the relay loads at start.
    pub fn snapshots(&self) -> Vec<GroupSnapshot> {
        self.groups.iter().map(|(id, g)| g.snapshot(id, RESTORED_PUSH_IDS)).collect()
    }
}

/// A device's durable store: its client state plus the blobs handed to the app.
#[derive(Clone, Debug, Default)]
pub struct DeviceStore {
    /// What the client loads at start.
    pub state: ClientState,
    /// Blobs delivered to the app, in order.
    pub inbox: Vec<ReceivedBlob>,
    /// Operations fail with `Full` while set.
    pub full: bool,
}

impl DeviceStore {
    /// Moves outbox entries to the sent log at the cursors they were acknowledged at.
    fn mark_sent(&mut self, acked: &[([u8; 16], u64)]) {
        for (push_id, cursor) in acked {
            let entry = match self.state.outbox.iter().position(|e| e.push_id == *push_id) {
                Some(pos) => Some(self.state.outbox.remove(pos)),
                None => {
                    let at = self.state.sent.iter().find(|(_, e)| e.push_id == *push_id).map(|(c, _)| *c);
                    at.and_then(|c| self.state.sent.remove(&c))
                }
            };
            if let Some(entry) = entry {
                self.state.sent.insert(*cursor, entry);
            }
        }
    }

    /// Applies one operation (at its completion time).
    pub fn apply(&mut self, op: &ClientStoreOp) -> Result<(), StoreError> {
        if self.full && !matches!(op, ClientStoreOp::Requeue { .. } | ClientStoreOp::ForgetSent { .. }) {
            return Err(StoreError::Full);
        }
        match op {
            ClientStoreOp::SaveMembership(m) => self.state.membership = Some((**m).clone()),
            ClientStoreOp::AppendOutbox { entries, next_seq, last_hash } => {
                self.state.outbox.extend(entries.iter().cloned());
                self.state.next_seq = *next_seq;
                self.state.last_hash = *last_hash;
            }
            ClientStoreOp::MarkSent { acked, highest_head } => {
                self.mark_sent(acked);
                self.state.highest_head = *highest_head;
            }
            ClientStoreOp::Requeue { push_ids } => {
                let (again, kept) = std::mem::take(&mut self.state.sent)
                    .into_iter()
                    .partition::<std::collections::BTreeMap<_, _>, _>(|(_, e)| push_ids.contains(&e.push_id));
                self.state.sent = kept;
                self.state.outbox.extend(again.into_values());
                self.state.outbox.sort_by_key(|e| e.seq);
            }
            ClientStoreOp::ForgetSent { push_ids } => self.state.sent.retain(|_, e| !push_ids.contains(&e.push_id)),
            ClientStoreOp::Deliver { blobs, cursor, log_chain, senders, highest_head, trust_floor, sent } => {
                self.mark_sent(sent);
                self.inbox.extend(blobs.iter().cloned());
                self.state.cursor = *cursor;
                self.state.log_chain = *log_chain;
                for (d, v) in senders {
                    self.state.senders.insert(*d, v.clone());
                }
                self.state.highest_head = *highest_head;
                self.state.trust_floor = *trust_floor;
            }
        }
        Ok(())
    }
}
