//! Pairing mailbox slots: an inviter reserves a slot, one joiner at a time attaches, and the
//! relay forwards opaque messages between them until the slot is used, expires or runs out of
//! attempts.

use std::collections::{BTreeMap, BTreeSet};

use crate::io::ConnId;
use crate::time::Instant;

#[derive(Debug)]
pub(crate) struct Slot {
    pub inviter: ConnId,
    pub joiner: Option<ConnId>,
    pub expires: Instant,
    pub attempts: u8,
    /// When the attached joiner's attempt ends, finished or not.
    pub attempt_ends: Option<Instant>,
}

/// Longest a joiner stays attached to a slot: pairing takes a few round trips, and a joiner
/// that goes silent must not hold the invite for the rest of its life.
pub(crate) const ATTEMPT_TIMEOUT: crate::time::Duration = crate::time::Duration::from_secs(60);

/// Why a slot operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotRefusal {
    Taken,
    NotFound,
    /// The inviter holds `MAX_SLOTS_PER_CONN` slots already.
    TooMany,
}

/// Most slots one connection holds at once: a device shows one invite at a time; a member
/// must not squat the slot space.
pub(crate) const MAX_SLOTS_PER_CONN: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct Slots {
    slots: BTreeMap<u32, Slot>,
    /// Slots held by each inviter.
    held: BTreeMap<ConnId, BTreeSet<u32>>,
    /// Slots each joiner is attached to.
    attached: BTreeMap<ConnId, BTreeSet<u32>>,
}

impl Slots {
    pub fn register(&mut self, slot: u32, inviter: ConnId, expires: Instant, now: Instant) -> Result<(), SlotRefusal> {
        match self.slots.get(&slot) {
            Some(s) if s.inviter != inviter && s.expires > now => Err(SlotRefusal::Taken),
            Some(s) if s.inviter == inviter => {
                if let Some(joiner) = s.joiner {
                    unlink(&mut self.attached, joiner, slot);
                }
                self.slots.insert(slot, Slot { inviter, joiner: None, expires, attempts: 0, attempt_ends: None });
                Ok(())
            }
            _ if self.held.get(&inviter).is_some_and(|n| n.len() >= MAX_SLOTS_PER_CONN) => Err(SlotRefusal::TooMany),
            _ => {
                self.remove(slot);
                self.slots.insert(slot, Slot { inviter, joiner: None, expires, attempts: 0, attempt_ends: None });
                self.held.entry(inviter).or_default().insert(slot);
                Ok(())
            }
        }
    }

    /// Attaches a joiner; returns the inviter to tell. Each attach is one attempt.
    pub fn open(&mut self, slot: u32, joiner: ConnId, now: Instant, max_attempts: u8) -> Result<ConnId, SlotRefusal> {
        let s = self.slots.get_mut(&slot).ok_or(SlotRefusal::NotFound)?;
        if s.expires <= now || s.joiner.is_some() || s.attempts >= max_attempts || s.inviter == joiner {
            return Err(SlotRefusal::NotFound);
        }
        s.attempts += 1;
        s.joiner = Some(joiner);
        s.attempt_ends = Some(now + ATTEMPT_TIMEOUT);
        self.attached.entry(joiner).or_default().insert(slot);
        Ok(s.inviter)
    }

    /// The other side of `slot` for a message from `from`.
    pub fn peer(&self, slot: u32, from: ConnId) -> Option<ConnId> {
        let s = self.slots.get(&slot)?;
        if s.inviter == from {
            s.joiner
        } else if s.joiner == Some(from) {
            Some(s.inviter)
        } else {
            None
        }
    }

    /// Detaches the current joiner (the attempt is over); returns it.
    pub fn detach(&mut self, slot: u32) -> Option<ConnId> {
        let s = self.slots.get_mut(&slot)?;
        s.attempt_ends = None;
        let joiner = s.joiner.take()?;
        unlink(&mut self.attached, joiner, slot);
        Some(joiner)
    }

    pub fn get(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(&slot)
    }

    pub fn remove(&mut self, slot: u32) -> Option<Slot> {
        let removed = self.slots.remove(&slot)?;
        unlink(&mut self.held, removed.inviter, slot);
        if let Some(joiner) = removed.joiner {
            unlink(&mut self.attached, joiner, slot);
        }
        Some(removed)
    }

    /// Slots that `conn` takes part in, as (slot, is_inviter).
    pub fn involving(&self, conn: ConnId) -> Vec<(u32, bool)> {
        let held = self.held.get(&conn).into_iter().flatten().map(|n| (*n, true));
        held.chain(self.attached.get(&conn).into_iter().flatten().map(|n| (*n, false))).collect()
    }

    /// Slots `conn` is attached to as a joiner.
    pub fn attached_to(&self, conn: ConnId) -> usize {
        self.attached.get(&conn).map_or(0, BTreeSet::len)
    }

    /// Every pending deadline: expiries and attempts' ends.
    pub fn deadlines(&self) -> impl Iterator<Item = (Instant, u32)> + '_ {
        self.slots.iter().flat_map(|(n, s)| [Some(s.expires), s.attempt_ends].into_iter().flatten().map(|t| (t, *n)))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

fn unlink(index: &mut BTreeMap<ConnId, BTreeSet<u32>>, conn: ConnId, slot: u32) {
    if let Some(set) = index.get_mut(&conn) {
        set.remove(&slot);
        if set.is_empty() {
            index.remove(&conn);
        }
    }
}
