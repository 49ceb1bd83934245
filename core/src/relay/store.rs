//! What the relay asks its store to do, and what the store answers. The driver executes
//! these durably (SQLite, PostgreSQL, the simulator) and reports back with `StoreDone`.

use crate::io::StoreError;
use crate::wire::StoredBlob;

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
    /// Create a group with its first access key.
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
    /// Store a blob at a cursor, unless the push id is already stored (then answer
    /// [`RelayStoreResult::Duplicate`] and store nothing). Cursor and blob in one transaction.
    /// The blob's chain value extends the blob at `prev_cursor`: refuse (`Failed`, nothing
    /// written) unless that is the highest cursor the group ever stored (0: none), so the
    /// log never forks even if appends are applied out of order. Apply a group's appends in
    /// the order the relay issues them.
    Append {
        /// The group.
        group_id: [u8; 32],
        /// The blob, with the cursor and chain value the relay assigned.
        blob: StoredBlob,
        /// The cursor this blob's chain value extends.
        prev_cursor: u64,
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
    /// Delete the oldest blobs: from the lowest cursor up, each blob with cursor < `before`
    /// or stored before `stored_before_ms`, stopping at the first that is neither (what
    /// remains is always the tail of the log). Keep the chain value of the last one deleted.
    Prune {
        /// The group.
        group_id: [u8; 32],
        /// Delete below this cursor.
        before: u64,
        /// Delete blobs stored before this time (0: none by time).
        stored_before_ms: u64,
    },
}

/// The store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayStoreResult {
    /// Done (CreateGroup, RegisterKey, Append, SaveAck).
    Done,
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
