//! The client's durable state and the store operations that change it. The driver persists
//! each operation atomically and loads a [`ClientState`] at start.

use std::collections::BTreeMap;

use crate::io::StoreError;
use crate::keys::{DeviceId, EpochSecret, GroupId, NoiseKeypair, NoisePublic};

/// Where a relay is and who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayInfo {
    /// Its transport endpoint id.
    pub endpoint_id: [u8; 32],
    /// Its Noise static key (pinned).
    pub noise_key: NoisePublic,
    /// Addresses to reach it, most preferred first.
    pub addrs: Vec<String>,
}

/// Membership of one sync group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group_id: GroupId,
    /// Current key epoch.
    pub epoch: u32,
    /// Its secret.
    pub epoch_secret: EpochSecret,
    /// This device's relay access key for the group.
    pub access_key: NoiseKeypair,
    /// The group's relay.
    pub relay: RelayInfo,
    /// While the group is not yet confirmed at the relay: the creation request (with the
    /// relay's admission token, if it needs one). Cleared once the relay welcomed us.
    pub pending_creation: Option<PendingCreation>,
    /// Relay access keys this device registered for the devices it invited. A relay restored
    /// from a backup older than a pairing forgets the key; this device registers it again
    /// at every connection, so the device it invited is not locked out.
    pub introduced: Vec<[u8; 32]>,
}

/// A group creation the relay has not confirmed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCreation {
    /// The relay's admission token, if required.
    pub admission_token: Option<Vec<u8>>,
}

/// A sealed blob waiting for the relay's acknowledgement. Sent byte for byte again on retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The id the relay deduplicates on.
    pub push_id: [u8; 16],
    /// This device's sequence number for the blob.
    pub seq: u64,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
}

/// What this device knows of another sender's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderView {
    /// Highest sequence number applied (0: none).
    pub last_seq: u64,
    /// Chain hash of that blob (zero for none).
    pub last_hash: [u8; 32],
    /// The relay cursor that blob was stored at (0: none, or not recorded).
    pub last_cursor: u64,
    /// Stretches of this sender's chain given up on ([`super::ClientEvent::BlobsLost`]), oldest
    /// first: a given-up blob that arrives later still applies, in order, if it links.
    pub given_up: Vec<GivenUp>,
}

/// A stretch of a sender's chain given up on, still open to late arrivals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GivenUp {
    /// The sequence number the next late blob must have.
    pub next_seq: u64,
    /// The last sequence number given up.
    pub to_seq: u64,
    /// The chain hash that blob's `prev_hash` must be.
    pub prev_hash: [u8; 32],
}

/// A blob handed to the app, in the order applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedBlob {
    /// The relay cursor it was stored at.
    pub cursor: u64,
    /// The sender's push id (the blob id apps see).
    pub push_id: [u8; 16],
    /// The sending device.
    pub sender: DeviceId,
    /// The sender's sequence number.
    pub seq: u64,
    /// The decrypted payload.
    pub payload: Vec<u8>,
    /// When the relay stored it, Unix ms.
    pub stored_at_ms: u64,
}

/// Everything durable about a device, as the driver loads it at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// The group this device belongs to, if any.
    pub membership: Option<Membership>,
    /// Next sequence number this device will seal with (starts at 1).
    pub next_seq: u64,
    /// Chain hash of this device's last sealed blob.
    pub last_hash: [u8; 32],
    /// Sealed blobs not yet acknowledged, in sequence order.
    pub outbox: Vec<OutboxEntry>,
    /// This device's acknowledged blobs, by the cursor the relay acknowledged them at: kept
    /// until the relay has pruned past them, to push again whatever the relay loses or alters.
    pub sent: BTreeMap<u64, OutboxEntry>,
    /// Every cursor up to here has been applied durably.
    pub cursor: u64,
    /// The relay log's chain value at `cursor` ([`crate::log`]); `None`: take the relay's
    /// next statement (nothing pulled yet, or after a reported rollback or truncation).
    pub log_chain: Option<[u8; 32]>,
    /// Other senders' chains.
    pub senders: BTreeMap<DeviceId, SenderView>,
    /// The highest relay head ever seen (rollback detection).
    pub highest_head: u64,
    /// The relay's earliest retained cursor when this device last skipped pruned history
    /// (0: never). A sender whose last applied blob lies below it starts its chain at its first
    /// blob from here on (a trust point).
    pub trust_floor: u64,
}

/// A durable change the client needs. A driver applies them in the order they are issued
/// (one after the other, as SQLite's single writer and IndexedDB's transactions do), and
/// reports each with `StoreDone` once durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientStoreOp {
    /// Record group membership (after creating or joining a group).
    SaveMembership(Box<Membership>),
    /// Add sealed blobs to the outbox and advance this device's chain, atomically.
    AppendOutbox {
        /// The new entries, in sequence order.
        entries: Vec<OutboxEntry>,
        /// Next sequence number after them.
        next_seq: u64,
        /// Chain hash of the last of them.
        last_hash: [u8; 32],
    },
    /// The relay acknowledged these outbox entries at these cursors: keep them as sent (the
    /// durable sent log) and raise the highest head seen, atomically.
    MarkSent {
        /// Push ids and the cursors they were acknowledged at.
        acked: Vec<([u8; 16], u64)>,
        /// The highest relay head seen (at least every acknowledged cursor).
        highest_head: u64,
    },
    /// These sent blobs are to be pushed again (the relay lost or altered them): they are
    /// unacknowledged outbox entries again.
    Requeue {
        /// Their push ids.
        push_ids: Vec<[u8; 16]>,
    },
    /// These sent blobs are no longer needed (the relay pruned past them): drop them.
    ForgetSent {
        /// Their push ids.
        push_ids: Vec<[u8; 16]>,
    },
    /// Hand blobs to the app and set the cursor, atomically.
    Deliver {
        /// Blobs to store for the app, in the order applied.
        blobs: Vec<ReceivedBlob>,
        /// The new durable cursor (lower than before only after a relay rollback or fork).
        cursor: u64,
        /// The relay log's chain value at `cursor`.
        log_chain: Option<[u8; 32]>,
        /// Updated sender chains.
        senders: Vec<(DeviceId, SenderView)>,
        /// The highest relay head seen (reset to the relay's head after a rollback).
        highest_head: u64,
        /// See [`ClientState::trust_floor`].
        trust_floor: u64,
        /// This device's outbox entries found in the log (their acknowledgement was lost): sent
        /// at these cursors, as with [`ClientStoreOp::MarkSent`].
        sent: Vec<([u8; 16], u64)>,
    },
}

/// The result of a store operation.
pub type StoreResult = Result<(), StoreError>;
