//! One group at the relay: members, cursor assignment, the durable head, quotas, dedupe.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::store::GroupSnapshot;
use crate::io::ConnId;
use crate::log::{self, LogChain};
use crate::wire::{Bytes, StoredBlob};

/// Recently stored push ids kept in memory for instant idempotent answers.
const RECENT_PUSH_IDS: usize = 4096;

/// A push waiting for its append to become durable.
#[derive(Debug)]
pub(crate) struct PendingPush {
    pub cursor: u64,
    pub chain: LogChain,
    pub size: u64,
    /// Connections to acknowledge (the pusher, and any retry that arrived meanwhile).
    pub waiters: Vec<ConnId>,
    /// The cursor its chain value extends.
    prev: u64,
    /// It extends a push whose append failed: the store will refuse it too.
    pub doomed: bool,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub keys: BTreeSet<[u8; 32]>,
    /// Next cursor to assign. Never decreases, so a cursor is never given out twice.
    next_cursor: u64,
    /// The durable head: the highest durable cursor with every cursor below it settled. It
    /// never covers trailing holes, so after a restart (next cursor = highest durable + 1) no
    /// cursor a device has seen inside the head is ever given out again.
    pub head: u64,
    /// The log chain value at `head`.
    pub head_chain: LogChain,
    /// The last assigned cursor and its chain value: the next push extends it.
    tip: (u64, LogChain),
    /// The newest cursor the store holds (settled durable) and its chain value.
    stored_top: (u64, LogChain),
    newly_doomed: Vec<([u8; 16], Vec<ConnId>)>,
    /// Every cursor up to here is settled (durable, or a hole left by a failed append).
    settled_prefix: u64,
    /// Settled cursors above `head`, waiting for the ones before them, with the chain value
    /// of the durable ones.
    settled: BTreeMap<u64, Option<LogChain>>,
    pub earliest: u64,
    pub stored_bytes: u64,
    pub stored_blobs: u64,
    reserved_bytes: u64,
    reserved_blobs: u64,
    pub acked: BTreeMap<[u8; 32], u64>,
    pub online: BTreeSet<ConnId>,
    pub pending: BTreeMap<[u8; 16], PendingPush>,
    recent: BTreeMap<[u8; 16], u64>,
    recent_order: VecDeque<[u8; 16]>,
}

impl Group {
    pub fn new(group_id: [u8; 32], first_key: [u8; 32]) -> Self {
        Self::from_snapshot(&GroupSnapshot {
            group_id,
            keys: vec![first_key],
            head: 0,
            chain: None,
            earliest: 1,
            bytes: 0,
            blobs: 0,
            acked: Vec::new(),
            recent: Vec::new(),
        })
    }

    pub fn from_snapshot(s: &GroupSnapshot) -> Self {
        let head_chain = s.chain.unwrap_or_else(|| log::genesis(&s.group_id));
        let mut group = Group {
            keys: s.keys.iter().copied().collect(),
            next_cursor: s.head + 1,
            head: s.head,
            head_chain,
            tip: (s.head, head_chain),
            stored_top: (s.head, head_chain),
            newly_doomed: Vec::new(),
            settled_prefix: s.head,
            settled: BTreeMap::new(),
            earliest: s.earliest.max(1),
            stored_bytes: s.bytes,
            stored_blobs: s.blobs,
            reserved_bytes: 0,
            reserved_blobs: 0,
            acked: s.acked.iter().copied().collect(),
            online: BTreeSet::new(),
            pending: BTreeMap::new(),
            recent: BTreeMap::new(),
            recent_order: VecDeque::new(),
        };
        for (push_id, cursor) in &s.recent {
            group.remember(*push_id, *cursor);
        }
        group
    }

    #[cfg(feature = "planted-bugs")]
    pub fn reuse_last_cursor(&mut self) {
        self.next_cursor = self.head.max(1);
    }

    /// The cursor of an already stored push id, if remembered.
    pub fn stored_cursor(&self, push_id: &[u8; 16]) -> Option<u64> {
        self.recent.get(push_id).copied()
    }

    /// Whether `size` more bytes and one more blob fit the quota.
    pub fn fits(&self, size: u64, quota_bytes: u64, quota_blobs: u64) -> bool {
        self.stored_bytes + self.reserved_bytes + size <= quota_bytes
            && self.stored_blobs + self.reserved_blobs < quota_blobs
    }

    /// Assigns the next cursor and chain value to a new push and reserves its quota. Returns
    /// the blob to store and the cursor its chain value extends.
    /// Bytes stored and reserved by pushes in flight.
    pub fn footprint(&self) -> u64 {
        self.stored_bytes + self.reserved_bytes
    }

    pub fn assign(&mut self, push_id: [u8; 16], envelope: Bytes, stored_at_ms: u64, conn: ConnId) -> (StoredBlob, u64) {
        let cursor = self.next_cursor;
        self.next_cursor += 1;
        let size = envelope.len() as u64;
        self.reserved_bytes += size;
        self.reserved_blobs += 1;
        let (prev_cursor, prev_chain) = self.tip;
        let mut blob = StoredBlob { cursor, push_id, stored_at_ms, envelope, chain: [0; 32] };
        blob.chain = log::link(&prev_chain, &blob);
        self.tip = (cursor, blob.chain);
        let pending =
            PendingPush { cursor, chain: blob.chain, size, waiters: vec![conn], prev: prev_cursor, doomed: false };
        self.pending.insert(push_id, pending);
        (blob, prev_cursor)
    }

    /// Settles a pending push: `stored_at` is `Some(cursor)` when the store holds it (at our
    /// cursor or, for a duplicate, the original one), `None` when the append failed. Returns
    /// the push and whether the durable head moved.
    pub fn settle(&mut self, push_id: &[u8; 16], stored_at: Option<u64>) -> Option<(PendingPush, bool)> {
        let push = self.pending.remove(push_id)?;
        self.reserved_bytes = self.reserved_bytes.saturating_sub(push.size);
        self.reserved_blobs = self.reserved_blobs.saturating_sub(1);
        if let Some(at) = stored_at {
            if at == push.cursor {
                self.stored_bytes += push.size;
                self.stored_blobs += 1;
            }
            self.remember(*push_id, at);
        }
        let durable = stored_at == Some(push.cursor);
        self.settled.insert(push.cursor, durable.then_some(push.chain));
        let before = self.head;
        while let Some(chain) = self.settled.remove(&(self.settled_prefix + 1)) {
            self.settled_prefix += 1;
            if let Some(chain) = chain {
                self.head = self.settled_prefix;
                self.head_chain = chain;
            }
        }
        if durable && push.cursor > self.stored_top.0 {
            self.stored_top = (push.cursor, push.chain);
        }
        if !durable {
            // Pushes chained onto this one will be refused by the store too. The next push
            // extends what the store will hold: the newest pending push not chained onto a
            // failed one, else the newest stored blob. (Not the settled head: extending that
            // would fork the chain beside live pending pushes, and whichever branch the store
            // takes, the other fails, out of the devices' order.)
            let doomed = self.doom_successors(push.cursor);
            self.newly_doomed.extend(doomed);
            self.tip = self
                .pending
                .values()
                .filter(|p| !p.doomed)
                .max_by_key(|p| p.cursor)
                .map_or(self.stored_top, |p| (p.cursor, p.chain));
        }
        Some((push, self.head != before))
    }

    /// Pending pushes newly found chained onto a failed append, with their waiters: their
    /// devices' later pushes must wait for them from now on.
    pub fn take_newly_doomed(&mut self) -> Vec<([u8; 16], Vec<ConnId>)> {
        std::mem::take(&mut self.newly_doomed)
    }

    /// The append at `failed` did not happen: marks the pending pushes chained onto it, which
    /// the store will refuse too, and returns them (newly marked) with their waiters.
    fn doom_successors(&mut self, failed: u64) -> Vec<([u8; 16], Vec<ConnId>)> {
        let mut by_cursor: Vec<(&[u8; 16], &mut PendingPush)> = self.pending.iter_mut().collect();
        by_cursor.sort_by_key(|(_, p)| p.cursor);
        let mut chain_broken = BTreeSet::from([failed]);
        let mut newly = Vec::new();
        for (id, p) in by_cursor {
            if chain_broken.contains(&p.prev) {
                chain_broken.insert(p.cursor);
                if !p.doomed {
                    p.doomed = true;
                    newly.push((*id, p.waiters.clone()));
                }
            }
        }
        newly
    }

    fn remember(&mut self, push_id: [u8; 16], cursor: u64) {
        if self.recent.insert(push_id, cursor).is_none() {
            self.recent_order.push_back(push_id);
        }
        while self.recent_order.len() > RECENT_PUSH_IDS {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }

    /// The lowest cursor every registered key has acknowledged.
    pub fn min_acked(&self) -> u64 {
        self.keys.iter().map(|k| self.acked.get(k).copied().unwrap_or(0)).min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(g: &mut Group, id: u8, size: usize) -> u64 {
        g.assign([id; 16], Bytes(vec![0; size]), 0, ConnId(1)).0.cursor
    }

    #[test]
    fn head_advances_only_over_a_settled_prefix() {
        let mut g = Group::new([9; 32], [1; 32]);
        let a = push(&mut g, 1, 10);
        let b = push(&mut g, 2, 10);
        let c = push(&mut g, 3, 10);
        assert_eq!((a, b, c), (1, 2, 3));
        assert_eq!(g.settle(&[2; 16], Some(2)).map(|(_, moved)| moved), Some(false));
        assert_eq!(g.head, 0, "cursor 1 is not durable yet");
        assert_eq!(g.settle(&[1; 16], None).map(|(_, moved)| moved), Some(true));
        assert_eq!(g.head, 2, "a failed append is a hole, not a block");
        assert_eq!(g.settle(&[3; 16], Some(3)).map(|(_, m)| m), Some(true));
        assert_eq!(g.head, 3);
        assert_eq!((g.stored_blobs, g.stored_bytes), (2, 20));
        assert_eq!(g.stored_cursor(&[2; 16]), Some(2));
        assert_eq!(g.stored_cursor(&[1; 16]), None);
        assert_eq!(push(&mut g, 4, 1), 4, "cursors are never reused");
    }

    /// Regression (simulation seed 11692): a head advanced over trailing failed appends made a
    /// restarted relay reuse cursors that devices had already passed.
    #[test]
    fn the_head_never_covers_trailing_holes() {
        let mut g = Group::new([9; 32], [1; 32]);
        push(&mut g, 1, 1);
        push(&mut g, 2, 1);
        g.settle(&[1; 16], Some(1));
        assert_eq!(g.settle(&[2; 16], None).map(|(_, moved)| moved), Some(false));
        assert_eq!(g.head, 1, "cursor 2 failed: the head stays at the last durable cursor");
        push(&mut g, 3, 1);
        g.settle(&[3; 16], Some(3));
        assert_eq!(g.head, 3, "a hole below a durable cursor is passed over");
    }

    #[test]
    fn each_push_extends_the_chain_and_a_failed_append_falls_back_to_the_head() {
        let mut g = Group::new([9; 32], [1; 32]);
        assert_eq!(g.head_chain, log::genesis(&[9; 32]));
        let (first, prev) = g.assign([1; 16], Bytes(vec![1]), 7, ConnId(1));
        assert_eq!((first.cursor, prev), (1, 0));
        assert_eq!(first.chain, log::link(&log::genesis(&[9; 32]), &first));
        let (second, prev) = g.assign([2; 16], Bytes(vec![2]), 8, ConnId(1));
        assert_eq!((second.cursor, prev), (2, 1));
        assert_eq!(second.chain, log::link(&first.chain, &second));
        g.settle(&[1; 16], Some(1));
        assert_eq!((g.head, g.head_chain), (1, first.chain));
        g.settle(&[2; 16], None);
        let (third, prev) = g.assign([3; 16], Bytes(vec![3]), 9, ConnId(1));
        assert_eq!((third.cursor, prev), (3, 1), "the failed cursor 2 is skipped in the chain");
        assert_eq!(third.chain, log::link(&first.chain, &third));
        g.settle(&[3; 16], Some(3));
        assert_eq!((g.head, g.head_chain), (3, third.chain));
    }

    #[test]
    fn a_failed_append_dooms_exactly_the_pushes_chained_onto_it_and_keeps_live_ones_extended() {
        let mut g = Group::new([9; 32], [1; 32]);
        let prev = |g: &mut Group, id: u8| g.assign([id; 16], Bytes(vec![0]), 0, ConnId(1)).1;
        assert_eq!((prev(&mut g, 1), prev(&mut g, 2)), (0, 1));
        g.settle(&[1; 16], None);
        assert_eq!(g.take_newly_doomed(), vec![([2; 16], vec![ConnId(1)])], "2 extends the failed 1");
        assert_eq!((prev(&mut g, 3), prev(&mut g, 4)), (0, 3), "3 extends what the store holds");
        // The doomed 2 fails: 3 and 4 do not extend it, and the next push still extends 4
        // (extending the stored head instead would fork beside 3 and 4).
        g.settle(&[2; 16], None);
        assert!(g.take_newly_doomed().is_empty());
        assert_eq!(prev(&mut g, 5), 4);
        g.settle(&[3; 16], None);
        let doomed: Vec<u8> = g.take_newly_doomed().iter().map(|(id, _)| id[0]).collect();
        assert_eq!(doomed, vec![4, 5]);
        assert_eq!(prev(&mut g, 6), 0);
    }

    #[test]
    fn quota_counts_reservations() {
        let mut g = Group::new([9; 32], [1; 32]);
        assert!(g.fits(100, 100, 10));
        push(&mut g, 1, 60);
        assert!(g.fits(40, 100, 10));
        assert!(!g.fits(41, 100, 10));
        assert!(!g.fits(1, 1000, 1));
    }
}
