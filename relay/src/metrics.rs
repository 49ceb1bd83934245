//! Relay counters, and their Prometheus text exposition (served at `/metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use zerok_core::relay::{RejectReason, RelayEvent};

/// What the relay has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    authenticated: AtomicU64,
    rejected: [AtomicU64; 10],
    groups_created: AtomicU64,
    blobs_stored: AtomicU64,
    bytes_stored: AtomicU64,
    store_failures: AtomicU64,
    limited: AtomicU64,
    open_connections: AtomicU64,
    refusing_writes: std::sync::atomic::AtomicBool,
}

const REASONS: [&str; 10] =
    ["handshake", "replay", "unauthorized", "admission", "timeout", "protocol", "full", "flood", "limited", "source"];

/// Index in [`REASONS`] of connections refused as they arrived, over the per-source cap.
const OVER_SOURCE_CAP: usize = 9;

impl Metrics {
    /// A connection arrived.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
    }

    /// A connection was refused as it arrived: its source address holds its cap already.
    pub fn refused_source(&self) {
        if let Some(c) = self.rejected.get(OVER_SOURCE_CAP) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Whether storage refuses writes now (full, or below the free-space floor).
    pub fn set_refusing_writes(&self, refusing: bool) {
        self.refusing_writes.store(refusing, Relaxed);
    }

    /// See [`Self::set_refusing_writes`].
    pub fn refusing_writes(&self) -> bool {
        self.refusing_writes.load(Relaxed)
    }

    /// A connection closed.
    pub fn closed(&self) {
        let _ = self.open_connections.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Counts one relay event.
    pub fn record(&self, e: &RelayEvent) {
        match e {
            RelayEvent::Rejected { reason, .. } => {
                let i = match reason {
                    RejectReason::Handshake => 0,
                    RejectReason::Replay => 1,
                    RejectReason::Unauthorized => 2,
                    RejectReason::Admission => 3,
                    RejectReason::Timeout => 4,
                    RejectReason::Protocol => 5,
                    RejectReason::Full => 6,
                    RejectReason::Flood => 7,
                    RejectReason::Limited => 8,
                };
                if let Some(c) = self.rejected.get(i) {
                    c.fetch_add(1, Relaxed);
                }
            }
            RelayEvent::Authenticated { .. } => {
                self.authenticated.fetch_add(1, Relaxed);
            }
            RelayEvent::GroupCreated => {
                self.groups_created.fetch_add(1, Relaxed);
            }
            RelayEvent::Stored { bytes, .. } => {
                self.blobs_stored.fetch_add(1, Relaxed);
                self.bytes_stored.fetch_add(*bytes as u64, Relaxed);
            }
            RelayEvent::StoreFailed => {
                self.store_failures.fetch_add(1, Relaxed);
            }
            RelayEvent::Limited { .. } => {
                self.limited.fetch_add(1, Relaxed);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
        };
        counter("zerok_connections_accepted_total", "Connections accepted.", self.accepted.load(Relaxed));
        counter(
            "zerok_connections_authenticated_total",
            "Connections that completed the handshake.",
            self.authenticated.load(Relaxed),
        );
        counter("zerok_groups_created_total", "Groups created.", self.groups_created.load(Relaxed));
        counter("zerok_blobs_stored_total", "Blobs stored durably.", self.blobs_stored.load(Relaxed));
        counter("zerok_bytes_stored_total", "Envelope bytes stored durably.", self.bytes_stored.load(Relaxed));
        counter("zerok_store_failures_total", "Store operations that failed.", self.store_failures.load(Relaxed));
        counter("zerok_requests_limited_total", "Requests refused by a limit.", self.limited.load(Relaxed));
        let _ = write!(
            out,
            "# HELP zerok_connections_rejected_total Connections refused or dropped, by reason.\n# TYPE zerok_connections_rejected_total counter\n"
        );
        for (reason, c) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(out, "zerok_connections_rejected_total{{reason=\"{reason}\"}} {}", c.load(Relaxed));
        }
        let _ = write!(
            out,
            "# HELP zerok_connections_open Connections open now.\n# TYPE zerok_connections_open gauge\nzerok_connections_open {}\n",
            self.open_connections.load(Relaxed)
        );
        let _ = write!(
            out,
            "# HELP zerok_storage_refusing_writes 1 while storage is full or below its free-space floor.\n# TYPE zerok_storage_refusing_writes gauge\nzerok_storage_refusing_writes {}\n",
            u8::from(self.refusing_writes())
        );
        out
    }
}
