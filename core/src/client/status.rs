//! The sync status an app shows: synced, pending, failed, offline.

/// What the app's sync indicator shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// ☁️✓ Everything local is at the relay and everything at the relay is applied.
    Synced,
    /// ☁️⏳ Local changes wait to be sent (now, or at the next launch).
    Pending,
    /// ☁️✗ The relay refused or failed a request; retrying with backoff.
    Failed,
    /// 📴 No connection to the relay; changes are saved locally.
    Offline,
}

/// The facts the status is derived from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StatusInputs {
    pub active: bool,
    pub paused: bool,
    pub online: bool,
    pub failed: bool,
    pub unsent: bool,
    pub behind: bool,
}

impl StatusInputs {
    /// The transitions of the integration guide: paused apps show pending until their outbox
    /// is empty; online apps are failed, pending or synced; the rest are failed (the relay
    /// refused us) or offline.
    pub fn status(self) -> SyncStatus {
        match self {
            StatusInputs { active: false, unsent: true, .. } => SyncStatus::Pending,
            StatusInputs { active: false, .. } => SyncStatus::Offline,
            StatusInputs { paused: true, unsent, .. } => {
                if unsent {
                    SyncStatus::Pending
                } else {
                    SyncStatus::Synced
                }
            }
            StatusInputs { online: true, failed: true, .. } => SyncStatus::Failed,
            StatusInputs { online: true, unsent, behind, .. } => {
                if unsent || behind {
                    SyncStatus::Pending
                } else {
                    SyncStatus::Synced
                }
            }
            StatusInputs { failed: true, .. } => SyncStatus::Failed,
            _ => SyncStatus::Offline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let base = StatusInputs { active: true, ..Default::default() };
        assert_eq!(StatusInputs::default().status(), SyncStatus::Offline, "disabled");
        assert_eq!(
            StatusInputs { unsent: true, ..Default::default() }.status(),
            SyncStatus::Pending,
            "disabled with unsent changes"
        );
        assert_eq!(base.status(), SyncStatus::Offline, "not connected");
        assert_eq!(StatusInputs { unsent: true, ..base }.status(), SyncStatus::Offline, "offline, saved locally");
        assert_eq!(StatusInputs { failed: true, ..base }.status(), SyncStatus::Failed);
        assert_eq!(StatusInputs { online: true, ..base }.status(), SyncStatus::Synced);
        assert_eq!(StatusInputs { online: true, unsent: true, ..base }.status(), SyncStatus::Pending);
        assert_eq!(StatusInputs { online: true, behind: true, ..base }.status(), SyncStatus::Pending);
        assert_eq!(StatusInputs { online: true, failed: true, unsent: true, ..base }.status(), SyncStatus::Failed);
        assert_eq!(
            StatusInputs { paused: true, unsent: true, ..base }.status(),
            SyncStatus::Pending,
            "will sync on next launch"
        );
        assert_eq!(StatusInputs { paused: true, ..base }.status(), SyncStatus::Synced);
    }
}
