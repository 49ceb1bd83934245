//! What the relay asks its store to do, and what the store answers. The driver executes
//! these durably (SQLite, PostgreSQL, the simulator) and reports back with `StoreDone`.

use crate::io::StoreError;
use crate::wire::{Bytes, StoredBlob};

/// A group's durable state, loaded by the driver when the relay starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The group id.
    pub group_id: [u8; 32],
    /// Registered relay access keys.
    pub keys: Vec<[u8; 32]>,
    /// Highest cursor ever made durable (0 if none).
    pub head: u64,
    /// The log chain value of the blob at `head` (`None` if nothing was ever stored).
    pub chain: Option<[u8; 32]>,
    /// Oldest retained cursor (head + 1 when empty).
    pub earliest: u64,
    /// Stored envelope bytes.
    pub bytes: u64,
    /// Stored blobs.
    pub blobs: u64,
    /// The cursor each key has acknowledged.
    pub acked: Vec<([u8; 32], u64)>,
    /// The most recently stored push ids with their cursors (at most [`RESTORED_PUSH_IDS`],
    /// oldest first): pushes devices resend after a restart, their acknowledgements lost, are
    /// answered at once instead of taking a cursor the store then refuses.
    pub recent: Vec<([u8; 16], u64)>,
}

/// How many recent push ids a store hands back per group at start.
pub const RESTORED_PUSH_IDS: usize = 1024;

/// A durable operation the relay needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayStoreOp {
    /// Create a group with its first access key. If the group exists already, answer `Done`
    /// only if `key` is one of its keys (a creation retried), else `Failed` (created by
    /// another device, through this relay or another over the same store).
    CreateGroup {
        /// The group.
        group_id: [u8; 32],
        /// Its first member's access key.
        key: [u8; 32],
    },
    /// Admit another access key to a group.
    RegisterKey {
        /// The group.
        group_id: [u8; 32],
        /// The new key.
        key: [u8; 32],
    },
    /// Store a blob at the group's next cursor (its highest stored cursor + 1) with the log
    /// chain value extending the blob there ([`crate::log::link`] of the head's chain value,
    /// or of [`crate::log::genesis`] for an empty log), and answer
    /// [`RelayStoreResult::Stored`]; unless the push id is already stored (then answer
    /// [`RelayStoreResult::Duplicate`] and store nothing). The store, not the relay, assigns
    /// the cursor: several relays over one store never hand out a cursor twice or fork the
    /// chain. Cursor, blob and head in one transaction, under the group's lock.
    Append {
        /// The group.
        group_id: [u8; 32],
        /// The device's idempotence key.
        push_id: [u8; 16],
        /// When the relay received it.
        stored_at_ms: u64,
        /// The sealed envelope.
        envelope: Bytes,
        /// The same connection's previous push, if its append was not answered yet when this
        /// one was issued: store this one only if that one is stored (else `Failed`, nothing
        /// written), so a device's pushes are never stored out of its order.
        after: Option<[u8; 16]>,
    },
    /// The group's current durable state as the store holds it (`recent` left empty): what
    /// another relay over the same store may have changed (head, members, acknowledgements).
    LoadGroup {
        /// The group.
        group_id: [u8; 32],
    },
    /// Read blobs with `after < cursor <= up_to`, in cursor order, at most `limit` of them and
    /// at most `max_bytes` of envelopes (but at least one if any).
    Read {
        /// The group.
        group_id: [u8; 32],
        /// Exclusive lower bound.
        after: u64,
        /// Inclusive upper bound (the durable head).
        up_to: u64,
        /// Most blobs.
        limit: u32,
        /// Most envelope bytes.
        max_bytes: usize,
    },
    /// Record the cursor a device has durably applied.
    SaveAck {
        /// The group.
        group_id: [u8; 32],
        /// The device's access key.
        key: [u8; 32],
        /// Its cursor.
        cursor: u64,
    },
    /// Delete the oldest blobs: from the lowest cursor up, each blob with cursor <= the lowest
    /// cursor every registered key has acknowledged (if `all_acked`), or stored before
    /// `stored_before_ms`, stopping at the first that is neither (what remains is always the
    /// tail of the log). The store computes the bound from its own members, so a key another
    /// relay just admitted holds back pruning. Keep the chain value of the last one deleted.
    Prune {
        /// The group.
        group_id: [u8; 32],
        /// Delete what every member acknowledged.
        all_acked: bool,
        /// Delete blobs stored before this time (0: none by time).
        stored_before_ms: u64,
    },
}

/// The store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayStoreResult {
    /// Done (CreateGroup, RegisterKey, SaveAck).
    Done,
    /// The answer to an Append: stored at this cursor with this chain value, now the head.
    Stored {
        /// The cursor the store assigned.
        cursor: u64,
        /// The blob's log chain value.
        chain: [u8; 32],
    },
    /// The answer to a LoadGroup (`None`: no such group).
    Group(Option<GroupSnapshot>),
    /// The push id was already stored at this cursor; nothing was written.
    Duplicate {
        /// The original cursor.
        cursor: u64,
    },
    /// The answer to a Read.
    Blobs {
        /// The chain value at `after`: of the highest blob at or below it, kept even once
        /// that blob is pruned (`None`: no blob at or below `after` was ever stored).
        prev_chain: Option<[u8; 32]>,
        /// The blobs, in cursor order.
        blobs: Vec<StoredBlob>,
        /// More blobs exist within the bound.
        more: bool,
    },
    /// The answer to a Prune: what remains.
    Pruned {
        /// The oldest remaining cursor (head + 1 when empty).
        earliest: u64,
        /// Remaining envelope bytes.
        bytes: u64,
        /// Remaining blobs.
        blobs: u64,
    },
    /// Nothing was written.
    Failed(StoreError),
}

/// The blob an append stores at the group's next cursor: after `head` (0: nothing stored yet),
/// its chain value extending `head_chain` (`None`: the genesis of an empty log).
pub fn next_blob(
    group_id: &[u8; 32],
    head: u64,
    head_chain: Option<[u8; 32]>,
    push_id: [u8; 16],
    stored_at_ms: u64,
    envelope: Bytes,
) -> StoredBlob {
    let mut blob = StoredBlob { cursor: head + 1, push_id, stored_at_ms, envelope, chain: [0; 32] };
    blob.chain = crate::log::link(&head_chain.unwrap_or_else(|| crate::log::genesis(group_id)), &blob);
    blob
}
