//! The relay's deadlines in one min-heap: handshakes, pairing connections' lifetimes, slot
//! expiries and attempts, decoy replies, retention. A timer tick pops what is due instead of
//! scanning every connection and slot. Entries are not removed when their cause goes away;
//! a popped entry is checked against the relay's state, and the heap is rebuilt from that
//! state when stale entries outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::io::ConnId;
use crate::time::Instant;

/// What a deadline is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Deadline {
    /// A connection's handshake timeout or lifetime.
    Conn(ConnId),
    /// A slot's expiry or its attempt's end.
    Slot(u32),
    /// A connection's decoy replies.
    Decoy(ConnId),
    Retention,
    /// Reading the heads of groups with devices online from a shared store.
    HeadPoll,
}

/// Stale entries tolerated before a rebuild, beyond twice the live ones.
const SLACK: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, Deadline)>>,
}

impl Deadlines {
    pub fn at(&mut self, when: Instant, what: Deadline) {
        self.heap.push(Reverse((when, what)));
    }

    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Pops every deadline due by `now`. A cause may come more than once: its handler checks
    /// the relay's state, so a second look does nothing.
    pub fn due(&mut self, now: Instant) -> Vec<Deadline> {
        let mut out = Vec::new();
        while let Some(Reverse((t, what))) = self.heap.peek().copied() {
            if t > now {
                break;
            }
            self.heap.pop();
            out.push(what);
        }
        out
    }

    /// Whether stale entries are worth a rebuild, with `live` deadlines really pending.
    pub fn bloated(&self, live: usize) -> bool {
        self.heap.len() > 2 * live + SLACK
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn rebuild(&mut self, live: impl IntoIterator<Item = (Instant, Deadline)>) {
        self.heap = live.into_iter().map(Reverse).collect();
    }
}
