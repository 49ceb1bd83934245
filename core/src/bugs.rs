//! Deliberately broken behaviours (feature `planted-bugs`, tests only). Each one breaks a
//! promise the simulator checks; the planted-bug tests prove every check can fail.

/// Which bugs are switched on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Relay: acknowledge a push before its append is durable.
    pub ack_before_durable: bool,
    /// Relay and its store (simulator): do not deduplicate retried pushes.
    pub skip_dedupe: bool,
    /// Relay store (simulator): after a restart, give out the last durable cursor again.
    pub cursor_reuse_after_restart: bool,
    /// Device store (simulator): lose the outbox when the device crashes.
    pub drop_outbox_on_crash: bool,
    /// Client: apply a blob although earlier ones of its sender are missing.
    pub accept_seq_gap: bool,
    /// Client: seal a blob again (new nonce) when retrying it.
    pub reseal_on_retry: bool,
    /// Client: after pruned history, wait for a sender's pruned blobs instead of starting its
    /// chain at a trust point (a late joiner stays pending for ever).
    pub no_trust_points: bool,
    /// Relay store (simulator): open a store damaged at rest without checking and repairing
    /// its log chain (every reader stops at the damage).
    pub no_store_repair: bool,
    /// Client: say `Synced` as soon as the relay's head matches the cursor, before the page
    /// that checks the relay's log arrived (a rewritten history goes unnoticed by a device
    /// that exits once synced).
    pub synced_before_checked: bool,
    /// Client: never register introduced devices' keys again (a relay restored from a backup
    /// older than a pairing refuses the paired device for good).
    pub no_reregistration: bool,
    /// Relay over a shared store: admit devices and answer them from what this relay last
    /// knew of the group, without reading the store (a device that moved from another relay
    /// is told an old head).
    pub no_shared_lookup: bool,
}
