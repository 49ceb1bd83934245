//! Telling a dead connection from a quiet one. A relay that restarted, or a path that went
//! away, often sends nothing at all: the transport may take a long time to notice. So the
//! client expects an answer within `response_timeout` of any request (push, pull, ping), and
//! pings a quiet connection every `ping_interval`; no answer in time means the connection is
//! lost and the client reconnects.

use super::{Client, DisconnectReason};
use crate::time::Instant;
use crate::wire::{Frame, Ping};

impl Client {
    /// Something arrived on the current connection.
    pub(super) fn heard_from_relay(&mut self) {
        self.heard = self.now.mono;
        self.waiting_since = self.expecting_answer().then_some(self.now.mono);
    }

    /// A frame went out; requests start the answer clock if it is not running.
    pub(super) fn note_sent(&mut self, frame: &Frame) {
        if matches!(frame, Frame::Push(_) | Frame::Pull(_) | Frame::Ping(_)) && self.waiting_since.is_none() {
            self.waiting_since = Some(self.now.mono);
        }
    }

    pub(super) fn on_pong(&mut self, nonce: u64) {
        if self.ping_nonce == Some(nonce) {
            self.ping_nonce = None;
        }
    }

    /// A fresh connection (or none): nothing outstanding.
    pub(super) fn reset_liveness(&mut self) {
        self.heard = self.now.mono;
        self.waiting_since = None;
        self.ping_nonce = None;
    }

    pub(super) fn liveness_deadline(&self) -> Option<Instant> {
        if !matches!(self.phase, super::conn::Phase::Online { .. }) {
            return None;
        }
        Some(match self.waiting_since {
            Some(since) => since + self.config.response_timeout + self.upload_slack(),
            None => self.heard + self.config.ping_interval,
        })
    }

    pub(super) fn liveness_timeout(&mut self) {
        let Some(deadline) = self.liveness_deadline() else { return };
        if deadline > self.now.mono {
            return;
        }
        if self.waiting_since.is_some() {
            self.lost(DisconnectReason::Lost);
        } else {
            let nonce = u64::from_le_bytes(self.rng.bytes());
            self.ping_nonce = Some(nonce);
            self.send_frame(&Frame::Ping(Ping { nonce }));
        }
    }

    /// The oldest push in flight is acknowledged only once all of it is uploaded: allow for a
    /// slow uplink, 1 s per 64 KiB (16 s for the largest blob).
    fn upload_slack(&self) -> crate::time::Duration {
        let front = if self.in_flight > 0 { self.outbox.front().map_or(0, |e| e.envelope.len()) } else { 0 };
        crate::time::Duration::from_millis(front as u64 * 1000 / (64 * 1024))
    }

    fn expecting_answer(&self) -> bool {
        self.in_flight > 0 || self.pulling || self.ping_nonce.is_some()
    }
}
