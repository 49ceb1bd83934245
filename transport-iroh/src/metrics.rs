//! Relay counters, and their Prometheus text exposition (served at `/metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use zerok_core::relay::{RejectReason, RelayEvent};

/// What the relay has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    authenticated: AtomicU64,
    rejected: [AtomicU64; 7],
    groups_created: AtomicU64,
    blobs_stored: AtomicU64,
    bytes_stored: AtomicU64,
    store_failures: AtomicU64,
    limited: AtomicU64,
    open_connections: AtomicU64,
}

const REASONS: [&str; 7] = ["handshake", "replay", "unauthorized", "admission", "timeout", "protocol", "full"];

impl Metrics {
    /// A connection arrived.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
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
        out
    }
}
