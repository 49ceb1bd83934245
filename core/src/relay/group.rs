//! One group at the relay: members, cursor assignment, the durable head, quotas, dedupe.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::store::GroupSnapshot;
use crate::io::ConnId;
use crate::log::{self, LogChain};

/// Recently stored push ids kept in memory for instant idempotent answers.
const RECENT_PUSH_IDS: usize = 4096;

/// A push waiting for its append to become durable.
#[derive(Debug)]
pub(crate) struct PendingPush {
    pub size: u64,
    /// Connections to acknowledge (the pusher, and any retry that arrived meanwhile).
    pub waiters: Vec<ConnId>,
    /// The same connection's push the store must hold before this one (`Append::after`).
    after: Option<[u8; 16]>,
    /// It waits for a push whose append failed: the store will refuse it too.
    pub doomed: bool,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub keys: BTreeSet<[u8; 32]>,
    /// The durable head: the highest cursor the store reported (every cursor up to it is the
    /// store's, whichever relay appended it).
    pub head: u64,
    /// The log chain value at `head`.
    pub head_chain: LogChain,
    newly_doomed: Vec<([u8; 16], Vec<ConnId>)>,
    pub earliest: u64,
    pub stored_bytes: u64,
    pub stored_blobs: u64,
    reserved_bytes: u64,
    reserved_blobs: u64,
    pub acked: BTreeMap<[u8; 32], u64>,
    pub online: BTreeSet<ConnId>,
    pub pending: BTreeMap<[u8; 16], PendingPush>,
    /// Each connection's newest push that joined `pending`.
    last_pushed: BTreeMap<ConnId, [u8; 16]>,
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
        let mut group = Group {
            keys: s.keys.iter().copied().collect(),
            head: s.head,
            head_chain: s.chain.unwrap_or_else(|| log::genesis(&s.group_id)),
            newly_doomed: Vec::new(),
            earliest: s.earliest.max(1),
            stored_bytes: s.bytes,
            stored_blobs: s.blobs,
            reserved_bytes: 0,
            reserved_blobs: 0,
            acked: s.acked.iter().copied().collect(),
            online: BTreeSet::new(),
            pending: BTreeMap::new(),
            last_pushed: BTreeMap::new(),
            recent: BTreeMap::new(),
            recent_order: VecDeque::new(),
        };
        for (push_id, cursor) in &s.recent {
            group.remember(*push_id, *cursor);
        }
        group
    }

    /// Takes in what the store holds now (another relay may have appended, admitted a key or
    /// saved an acknowledgement). Returns whether the head moved.
    pub fn refresh(&mut self, s: &GroupSnapshot) -> bool {
        self.keys.extend(s.keys.iter().copied());
        for (key, cursor) in &s.acked {
            let known = self.acked.entry(*key).or_insert(0);
            *known = (*known).max(*cursor);
        }
        self.earliest = self.earliest.max(s.earliest);
        if s.head < self.head {
            return false;
        }
        (self.stored_bytes, self.stored_blobs) = (s.bytes, s.blobs);
        let moved = s.head > self.head;
        if let (true, Some(chain)) = (moved, s.chain) {
            (self.head, self.head_chain) = (s.head, chain);
        }
        moved
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

    /// Bytes stored and reserved by pushes in flight.
    pub fn footprint(&self) -> u64 {
        self.stored_bytes + self.reserved_bytes
    }

    /// A new push from `conn` waits for its append; its quota is reserved. Returns the push
    /// the store must hold first: the connection's previous push, if still pending.
    pub fn assign(&mut self, push_id: [u8; 16], size: u64, conn: ConnId) -> Option<[u8; 16]> {
        self.reserved_bytes += size;
        self.reserved_blobs += 1;
        let after = self.last_pushed.insert(conn, push_id).filter(|id| self.pending.contains_key(id));
        self.pending.insert(push_id, PendingPush { size, waiters: vec![conn], after, doomed: false });
        after
    }

    /// `conn` sent again a push that is still pending: it waits for the same answer, and the
    /// connection's next push goes after it.
    pub fn wait_for(&mut self, push_id: [u8; 16], conn: ConnId) {
        if let Some(p) = self.pending.get_mut(&push_id) {
            p.waiters.push(conn);
            self.last_pushed.insert(conn, push_id);
        }
    }

    /// The connection is gone.
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.online.remove(&conn);
        self.last_pushed.remove(&conn);
    }

    /// Settles a pending push: `stored` is the cursor and chain value the store appended it
    /// at, `duplicate` the cursor it already held it at; neither when the append failed.
    /// Returns the push and whether the durable head moved.
    pub fn settle(
        &mut self,
        push_id: &[u8; 16],
        stored: Option<(u64, LogChain)>,
        duplicate: Option<u64>,
    ) -> Option<(PendingPush, bool)> {
        let push = self.pending.remove(push_id)?;
        self.reserved_bytes = self.reserved_bytes.saturating_sub(push.size);
        self.reserved_blobs = self.reserved_blobs.saturating_sub(1);
        let mut moved = false;
        if let Some((cursor, chain)) = stored {
            self.stored_bytes += push.size;
            self.stored_blobs += 1;
            self.remember(*push_id, cursor);
            if cursor > self.head {
                (self.head, self.head_chain, moved) = (cursor, chain, true);
            }
        } else if let Some(cursor) = duplicate {
            self.remember(*push_id, cursor);
        } else {
            // The pushes waiting for this one will be refused by the store too.
            let doomed = self.doom_successors(*push_id);
            self.newly_doomed.extend(doomed);
        }
        Some((push, moved))
    }

    /// Pending pushes newly found waiting on a failed append, with their waiters: their
    /// devices' later pushes must wait for them from now on.
    pub fn take_newly_doomed(&mut self) -> Vec<([u8; 16], Vec<ConnId>)> {
        std::mem::take(&mut self.newly_doomed)
    }

    /// The append of `failed` did not happen: marks the pending pushes waiting on it, directly
    /// or through others, which the store will refuse too, and returns them (newly marked)
    /// with their waiters.
    fn doom_successors(&mut self, failed: [u8; 16]) -> Vec<([u8; 16], Vec<ConnId>)> {
        let mut broken = BTreeSet::from([failed]);
        let mut newly = Vec::new();
        loop {
            let next = self
                .pending
                .iter_mut()
                .find(|(id, p)| !broken.contains(*id) && p.after.is_some_and(|a| broken.contains(&a)));
            let Some((id, p)) = next else { return newly };
            broken.insert(*id);
            if !p.doomed {
                p.doomed = true;
                newly.push((*id, p.waiters.clone()));
            }
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(g: &mut Group, id: u8, cursor: u64) -> bool {
        g.settle(&[id; 16], Some((cursor, [cursor as u8; 32])), None).is_some_and(|(_, moved)| moved)
    }

    #[test]
    fn the_head_is_the_highest_cursor_the_store_reported() {
        let mut g = Group::new([9; 32], [1; 32]);
        assert_eq!(g.head_chain, log::genesis(&[9; 32]));
        for id in 1..=3 {
            g.assign([id; 16], 10, ConnId(u64::from(id)));
        }
        assert!(stored(&mut g, 1, 4), "cursors 1-3 are another relay's");
        assert_eq!((g.head, g.head_chain), (4, [4; 32]));
        assert!(g.settle(&[2; 16], None, Some(2)).is_some_and(|(_, moved)| !moved));
        assert_eq!(g.stored_cursor(&[2; 16]), Some(2));
        assert!(stored(&mut g, 3, 5));
        assert_eq!((g.stored_blobs, g.stored_bytes), (2, 20), "a duplicate stored nothing");
    }

    #[test]
    fn a_failed_append_dooms_exactly_the_pushes_waiting_on_it() {
        let mut g = Group::new([9; 32], [1; 32]);
        let (a, b) = (ConnId(1), ConnId(2));
        assert_eq!(g.assign([1; 16], 1, a), None);
        assert_eq!(g.assign([2; 16], 1, a), Some([1; 16]));
        assert_eq!(g.assign([3; 16], 1, b), None, "another connection's order is its own");
        assert_eq!(g.assign([4; 16], 1, a), Some([2; 16]));
        g.settle(&[1; 16], None, None);
        let doomed: Vec<u8> = g.take_newly_doomed().iter().map(|(id, _)| id[0]).collect();
        assert_eq!(doomed, vec![2, 4]);
        g.settle(&[2; 16], None, None);
        assert!(g.take_newly_doomed().is_empty(), "4 was doomed already");
        assert!(stored(&mut g, 3, 1));
        assert_eq!(g.assign([5; 16], 1, a), Some([4; 16]), "4 is still pending: 5 waits for it");
        g.settle(&[4; 16], None, None);
        assert_eq!(g.take_newly_doomed(), vec![([5; 16], vec![a])]);
    }

    #[test]
    fn a_resent_push_orders_the_connections_next_push_after_it() {
        let mut g = Group::new([9; 32], [1; 32]);
        g.assign([1; 16], 1, ConnId(1));
        g.wait_for([1; 16], ConnId(2));
        assert_eq!(g.assign([2; 16], 1, ConnId(2)), Some([1; 16]));
        stored(&mut g, 1, 1);
        assert_eq!(g.assign([3; 16], 1, ConnId(2)), Some([2; 16]));
        stored(&mut g, 2, 2);
        assert_eq!(g.assign([4; 16], 1, ConnId(1)), None, "1 is stored");
    }

    #[test]
    fn a_refresh_takes_the_stores_newer_state_and_never_goes_back() {
        let mut g = Group::new([9; 32], [1; 32]);
        let mut s = GroupSnapshot {
            group_id: [9; 32],
            keys: vec![[2; 32]],
            head: 7,
            chain: Some([7; 32]),
            earliest: 3,
            bytes: 70,
            blobs: 5,
            acked: vec![([2; 32], 6)],
            recent: Vec::new(),
        };
        assert!(g.refresh(&s));
        assert_eq!((g.head, g.head_chain, g.earliest, g.stored_bytes), (7, [7; 32], 3, 70));
        assert_eq!(g.keys.len(), 2);
        assert_eq!(g.acked.get(&[2; 32]), Some(&6));
        s.head = 5;
        s.earliest = 1;
        assert!(!g.refresh(&s));
        assert_eq!((g.head, g.earliest), (7, 3));
    }

    #[test]
    fn quota_counts_reservations() {
        let mut g = Group::new([9; 32], [1; 32]);
        assert!(g.fits(100, 100, 10));
        g.assign([1; 16], 60, ConnId(1));
        assert!(g.fits(40, 100, 10));
        assert!(!g.fits(41, 100, 10));
        assert!(!g.fits(1, 1000, 1));
    }
}
