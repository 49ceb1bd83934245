//! Frame bodies. Field order is the wire order (postcard); add fields and variants only at the
//! end, and only with a new wire version.

use serde::{Deserialize, Serialize};

use super::Bytes;

/// Device → relay, first frame after the handshake: the wire versions the device speaks and
/// the cursor it has durably applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Lowest protocol version the device speaks.
    pub min_version: u16,
    /// Highest protocol version the device speaks.
    pub max_version: u16,
    /// The last cursor the device has durably applied (0 for none).
    pub acked_cursor: u64,
}

/// Relay → device, answer to Hello: the chosen version, the group's state and the relay's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version chosen for this connection.
    pub version: u16,
    /// The group's newest cursor (0 if empty).
    pub head: u64,
    /// The oldest cursor still retained (1 if nothing was ever dropped).
    pub earliest: u64,
    /// Largest envelope the relay accepts, in bytes.
    pub max_envelope: u32,
    /// Most blobs the relay returns in one page.
    pub max_page_blobs: u32,
}

/// Device → relay: store an envelope. Idempotent by `push_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// Random id chosen by the device; a retry carries the same id and the same bytes.
    pub push_id: [u8; 16],
    /// The sealed envelope.
    pub envelope: Bytes,
}

/// Relay → device: the push with this id is durable at this cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// The id of the acknowledged push.
    pub push_id: [u8; 16],
    /// The cursor the relay assigned (the original one for a retry).
    pub cursor: u64,
}

/// Device → relay: send blobs with cursors greater than `after`, at most `limit` of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pull {
    /// Exclusive lower bound.
    pub after: u64,
    /// Most blobs wanted in this page (the relay may send fewer).
    pub limit: u32,
}

/// One stored blob as the relay returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    /// The cursor assigned at push time.
    pub cursor: u64,
    /// The push id the device chose.
    pub push_id: [u8; 16],
    /// When the relay stored it, Unix milliseconds (relay clock).
    pub stored_at_ms: u64,
    /// The sealed envelope, byte for byte as pushed.
    pub envelope: Bytes,
    /// The relay's log chain value after this blob ([`crate::log::link`]).
    pub chain: [u8; 32],
}

/// Relay → device: a page of blobs in cursor order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blobs {
    /// The `after` of the pull this page answers.
    pub after: u64,
    /// The relay's log chain value at `after` (the chain after the last blob at or below it).
    pub prev_chain: [u8; 32],
    /// Blobs in strictly increasing cursor order.
    pub blobs: Vec<StoredBlob>,
    /// More blobs follow the last one.
    pub has_more: bool,
    /// The group's newest cursor when the page was made.
    pub max_cursor: u64,
}

/// Relay → device, unsolicited: a blob was stored at `cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// The new head cursor.
    pub cursor: u64,
}

/// Device → relay: every blob up to `cursor` is durably applied (drives retention).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The device's durable cursor.
    pub cursor: u64,
}

/// Member → relay: admit this relay access key to the group (after pairing a new device).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterDevice {
    /// The new device's per-group relay access key (X25519 public key).
    pub access_key: [u8; 32],
}

/// Relay → member: the access key is registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRegistered {
    /// The registered key.
    pub access_key: [u8; 32],
}

/// Inviter → relay: open a pairing mailbox slot until `expires_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRegister {
    /// The 20-bit slot number from the invite.
    pub slot: u32,
    /// Unix milliseconds after which the relay drops the slot.
    pub expires_at_ms: u64,
}

/// Relay → inviter: the slot is reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRegistered {
    /// The reserved slot.
    pub slot: u32,
}

/// Joiner → relay: attach to a slot; relay → inviter: a joiner attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotOpen {
    /// The slot.
    pub slot: u32,
}

/// Either direction: an opaque pairing message the relay forwards to the slot's other side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMessage {
    /// The slot.
    pub slot: u32,
    /// A SPAKE2 message, a Noise XXpsk3 message, or a Noise transport message.
    pub data: Bytes,
}

/// Why a slot closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotCloseReason {
    /// Pairing finished.
    Done,
    /// This attempt failed (wrong code, bad handshake).
    Failed,
    /// The invite expired.
    Expired,
    /// The inviter cancelled, or too many attempts failed.
    Cancelled,
}

/// Either direction: the slot (or this attempt on it) is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotClose {
    /// The slot.
    pub slot: u32,
    /// Why.
    pub reason: SlotCloseReason,
}

/// Relay → device: history before `earliest` is gone (retention); pull from there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    /// The oldest cursor still retained.
    pub earliest: u64,
}

/// Coarse error codes: enough for a client to act on, never which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No common protocol version.
    UnsupportedVersion,
    /// A frame was malformed or not allowed in this state.
    BadRequest,
    /// Not admitted (unknown group, unregistered key, bad admission token).
    Unauthorized,
    /// The group's storage quota is used up.
    QuotaExceeded,
    /// Too many requests; retry after the given delay.
    RateLimited,
    /// The envelope or frame exceeds the relay's limit.
    TooLarge,
    /// No such slot.
    NotFound,
    /// The slot number is taken; pick another.
    SlotTaken,
    /// The invite or slot expired.
    Expired,
    /// The relay cannot serve now (storage failure); retry later.
    Unavailable,
    /// The relay is shutting down.
    ShuttingDown,
}

/// Relay → device: a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// What went wrong, coarsely.
    pub code: ErrorCode,
    /// How long to wait before retrying, in milliseconds (0: no advice).
    pub retry_after_ms: u64,
}

/// Either direction: liveness probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed in the Pong.
    pub nonce: u64,
}

/// Either direction: answer to Ping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The Ping's nonce.
    pub nonce: u64,
}

/// Why a side is closing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ByeReason {
    /// Orderly close (app disabled sync, paused, or closed).
    Normal,
    /// The relay is shutting down.
    Shutdown,
    /// The connection was idle too long.
    Idle,
    /// The peer broke the protocol.
    ProtocolViolation,
}

/// Either direction: closing now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    /// Why.
    pub reason: ByeReason,
}
