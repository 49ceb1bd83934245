//! The names apps see, the same in every binding (Tauri plugin, browser): status names, error
//! kinds, and which events are background problems worth reporting.

use super::{ClientEvent, CommandError, DisconnectReason, PairingFailure, SyncStatus};
use crate::invite::InviteError;

impl SyncStatus {
    /// `synced`, `pending`, `failed` or `offline`.
    pub fn name(self) -> &'static str {
        match self {
            SyncStatus::Synced => "synced",
            SyncStatus::Pending => "pending",
            SyncStatus::Failed => "failed",
            SyncStatus::Offline => "offline",
        }
    }
}

impl DisconnectReason {
    /// `unreachable`, `refused`, `lost` or `local`.
    pub fn name(self) -> &'static str {
        match self {
            DisconnectReason::Unreachable => "unreachable",
            DisconnectReason::Refused => "refused",
            DisconnectReason::Lost => "lost",
            DisconnectReason::Local => "local",
        }
    }
}

impl CommandError {
    /// A stable name for apps to branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandError::NotInGroup => "notInGroup",
            CommandError::AlreadyInGroup => "alreadyInGroup",
            CommandError::TooLarge(_) => "tooLarge",
            CommandError::Invite(InviteError::Expired) => "inviteExpired",
            CommandError::Invite(_) => "invalidInvite",
            CommandError::PairingBusy => "pairingBusy",
            CommandError::NotConnected => "notConnected",
        }
    }
}

impl PairingFailure {
    /// A stable name for apps to branch on.
    pub fn kind(self) -> &'static str {
        match self {
            PairingFailure::WrongCode => "wrongCode",
            PairingFailure::InviteUnavailable => "inviteUnavailable",
            PairingFailure::RelayUnavailable => "relayUnavailable",
            PairingFailure::Storage => "storage",
        }
    }

    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            PairingFailure::WrongCode => "pairing failed: wrong code, or the invite expired or was used",
            PairingFailure::InviteUnavailable => "pairing failed: the invite expired or was used",
            PairingFailure::RelayUnavailable => "pairing failed: the relay could not be reached",
            PairingFailure::Storage => "pairing failed: this device could not save the group",
        }
    }
}

impl ClientEvent {
    /// A problem found in the background that the app should hear of (its `error` event), as
    /// a kind and a message; `None` for every other event.
    pub fn background_error(&self) -> Option<(&'static str, String)> {
        Some(match self {
            ClientEvent::RelayError { code } => {
                ("relayError", format!("the relay refused a request ({code:?}); retrying"))
            }
            ClientEvent::PushFailed { error, .. } => {
                ("storage", format!("a push could not be saved on this device: {error:?}"))
            }
            ClientEvent::PairingFailed { reason } => ("pairingFailed", reason.message().to_owned()),
            ClientEvent::Truncated { earliest } => (
                "truncated",
                format!("history before cursor {earliest} was deleted at the relay before this device saw it"),
            ),
            ClientEvent::Tampered { cursor } => {
                ("tampered", format!("the blob at cursor {cursor} failed to open and was skipped"))
            }
            ClientEvent::Equivocation { seq, cursor, .. } => {
                ("equivocation", format!("a device signed two different blobs for sequence {seq} (cursor {cursor})"))
            }
            ClientEvent::Rollback { head, highest_seen } => {
                ("rollback", format!("the relay's history went back from {highest_seen} to {head}"))
            }
            ClientEvent::Forked { cursor, .. } => {
                ("forked", format!("the relay showed a different history at cursor {cursor}; re-reading it"))
            }
            ClientEvent::Withheld { missing_seq, .. } => {
                ("withheld", format!("a device's blob {missing_seq} is missing at the relay"))
            }
            ClientEvent::RelayMisbehaved { cursor } => {
                ("relayMisbehaved", format!("the relay served inconsistent data at cursor {cursor}"))
            }
            ClientEvent::TrustPoint { sender, seq, cursor } => (
                "trustPoint",
                format!(
                    "device {}'s blobs before its blob {seq} were pruned at the relay before this device read them; \
                     its history here starts at cursor {cursor}",
                    sender.short_hex()
                ),
            ),
            ClientEvent::BlobsLost { sender, from_seq, to_seq } => (
                "blobsLost",
                format!(
                    "device {}'s blobs {from_seq} to {to_seq} did not arrive in time; its later blobs are applied \
                     without them (they are still applied if they arrive)",
                    sender.short_hex()
                ),
            ),
            ClientEvent::LostAtRelay { cursor, .. } => (
                "lostAtRelay",
                format!("the relay lost or altered this device's blob stored at cursor {cursor}; pushing it again"),
            ),
            _ => return None,
        })
    }

    /// Whether the event is a report worth keeping for the user: every
    /// [`Self::background_error`] but a refused request or a failed pairing, which are retried or
    /// answered where they happen.
    pub fn is_report(&self) -> bool {
        self.background_error().is_some_and(|(kind, _)| !matches!(kind, "relayError" | "pairingFailed"))
    }

    /// Whether the event shows the relay misbehaving, or data missing that the relay should
    /// hold: every [`Self::is_report`] but pruned history (`truncated`, `trustPoint`: the
    /// operator's retention, reported so the app can say so).
    pub fn needs_attention(&self) -> bool {
        self.is_report() && !matches!(self, ClientEvent::Truncated { .. } | ClientEvent::TrustPoint { .. })
    }
}
