//! The shapes the plugin's commands and events carry, as the TypeScript package sees them
//! (camelCase; bytes as base64 strings on the wire, `Uint8Array` in the package).

use serde::{Deserialize, Serialize};
use zerok_core::client::{ReceivedBlob, SyncStatus};

/// What the app's sync indicator shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConnectionStatus {
    /// ☁️✓ Everything local is at the relay and everything at the relay is here.
    Synced,
    /// ☁️⏳ Local changes wait to be sent (now, or at the next launch).
    Pending,
    /// ☁️✗ The relay refused or failed a request; retrying with backoff.
    Failed,
    /// 📴 No connection to the relay (or sync is off); changes are saved locally.
    Offline,
}

impl From<SyncStatus> for ConnectionStatus {
    fn from(status: SyncStatus) -> Self {
        match status {
            SyncStatus::Synced => ConnectionStatus::Synced,
            SyncStatus::Pending => ConnectionStatus::Pending,
            SyncStatus::Failed => ConnectionStatus::Failed,
            SyncStatus::Offline => ConnectionStatus::Offline,
        }
    }
}

/// An open invite for another device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    /// A `data:image/svg+xml;base64,…` URL of the QR code, for an `<img src>`.
    pub qr_code: String,
    /// What the QR code holds (`0KSYNC:…`): `joinInvite` takes it as well as the short code,
    /// for apps that scan or share it themselves.
    pub qr_text: String,
    /// `XXXX-XXXX-XXXX-XXXX`, for typing on the other device.
    pub short_code: String,
    /// When the invite expires: Unix time in milliseconds (like `Date.now()`).
    pub expires_at: u64,
}

/// The outcome of a push. The blob is in the durable outbox either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResult {
    /// The blob's id (hex), as other devices will see it.
    pub blob_id: String,
    /// The relay cursor it was stored at, or 0 while it is pending.
    pub cursor: u64,
    /// True when the relay has not acknowledged it yet (offline, or slow): it syncs later by
    /// itself, and `sync://push-acked` reports its cursor then.
    pub pending: bool,
}

/// A page of blobs received from other devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResult {
    /// Oldest first.
    pub blobs: Vec<Blob>,
    /// More blobs follow: pull again after `max_cursor`.
    pub has_more: bool,
    /// The cursor of the last blob in this page (the argument when the page is empty).
    pub max_cursor: u64,
}

/// A blob from another device, decrypted and verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// The id its sender's push returned (hex).
    pub id: String,
    /// Its relay cursor.
    pub cursor: u64,
    /// The sending device (hex).
    pub sender: String,
    /// The payload.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    /// When the relay stored it: Unix time in milliseconds.
    pub timestamp: u64,
}

/// `sync://blob-available`: a new blob can be pulled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobInfo {
    /// Its id (hex).
    pub id: String,
    /// Its cursor: `pull(cursor - 1)` returns it.
    pub cursor: u64,
    /// The sending device (hex).
    pub sender: String,
}

/// `sync://connected`: the device is connected and authenticated to its relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// The group's newest cursor at the relay.
    pub head: u64,
}

/// `sync://status`: the indicator or the cursor changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    /// The indicator.
    pub status: ConnectionStatus,
    /// Every blob up to this cursor has been received.
    pub last_cursor: u64,
}

/// `sync://push-acked`: a pending push reached the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushAcked {
    /// The id its push returned.
    pub blob_id: String,
    /// Its cursor.
    pub cursor: u64,
}

/// `sync://progress`: how far a sync cycle is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Blobs still to push.
    pub unsent: usize,
    /// Every blob up to this cursor has been received.
    pub cursor: u64,
    /// The relay's newest cursor.
    pub head: u64,
}

/// `sync://device-added` and `sync://pairing-code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingInfo {
    /// The new device (hex), for `device-added`.
    pub device: Option<String>,
    /// The six-digit code both screens show, for `pairing-code`.
    pub code: Option<String>,
}

/// `sync://error`, and the rejection of every command: a stable `kind` to branch on and a
/// message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncError {
    /// For example `notInGroup`, `inviteExpired`, `tooLarge`, `relayError`.
    pub kind: String,
    /// What happened, in words.
    pub message: String,
}

/// The outcome of a manual sync cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncNowResult {
    /// The indicator when the cycle ended.
    pub status: ConnectionStatus,
    /// Every blob up to this cursor has been received.
    pub last_cursor: u64,
    /// Pushes the relay has not acknowledged yet.
    pub unsent: usize,
}

impl From<ReceivedBlob> for Blob {
    fn from(blob: ReceivedBlob) -> Self {
        Blob {
            id: hex(&blob.push_id),
            cursor: blob.cursor,
            sender: hex(&blob.sender.0),
            data: blob.payload,
            timestamp: blob.stored_at_ms,
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
