//! Pairing through a relay slot. Slot messages carry a one-byte tag: 1 = SPAKE2 message,
//! 2 = Noise XXpsk3 handshake message, 3 = Noise transport message (the group welcome).
//!
//! Inviter: register slot → joiner attaches → (SPAKE2) → XX 1,2,3 → register the joiner's
//! access key → welcome → done. Joiner: pairing connection → open slot → (SPAKE2) → XX →
//! welcome → save membership → reconnect as a member. Three failed attempts close the invite.

use super::{Client, ClientEvent, CommandError, DisconnectReason, Membership, PairingFailure, RelayInfo};
use crate::invite::{
    GroupWelcome, InviteCode, JoinRequest, QrInvite, ShortCode, SpakeExchange, TAG_HANDSHAKE, TAG_SPAKE, TAG_TRANSPORT,
    pairing_prologue, qr_psk, tagged,
};
use crate::keys::{InviteSecret, NoiseKeypair, NoisePublic};
use crate::noise::{PairingHandshake, PairingRole, Session};
use crate::time::{Duration, Instant};
use crate::wire::{
    Bytes, ErrorCode, Frame, RegisterDevice, SlotClose, SlotCloseReason, SlotMessage, SlotOpen, SlotRegister,
};

/// Failed joiner attempts before the inviter closes the invite.
const MAX_FAILURES: u8 = 3;

/// Taken slots an inviter tries another code for before it gives up (a random slot is taken by
/// chance only on a crowded relay; one after another means squatting).
const MAX_SLOT_RETRIES: u8 = 8;

/// Most introduced access keys a device keeps to register again (the membership record stays
/// small; issue 16's membership log will carry every member's key).
const MAX_INTRODUCED: usize = 256;
/// A joiner gives up after this long.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) enum InviterStep {
    Registering,
    Waiting,
    Spake,
    Handshake(Box<PairingHandshake>),
    Registering2 { session: Box<Session>, access_key: [u8; 32], device: [u8; 32] },
}

pub(super) enum JoinerStep {
    Connecting,
    Spake(Box<SpakeExchange>),
    Handshake(Box<PairingHandshake>),
    Welcome(Box<Session>),
    Saving,
}

pub(super) enum Pairing {
    Inviter {
        code: ShortCode,
        qr_secret: InviteSecret,
        key: NoiseKeypair,
        expires: Instant,
        expires_ms: u64,
        failures: u8,
        /// Slots found taken so far (each retried with a new code, up to [`MAX_SLOT_RETRIES`]).
        taken: u8,
        step: InviterStep,
    },
    Joiner {
        code: Box<InviteCode>,
        relay: RelayInfo,
        conn_key: NoiseKeypair,
        access_key: NoiseKeypair,
        deadline: Instant,
        step: JoinerStep,
    },
}

impl Pairing {
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Pairing::Inviter { expires, .. } => Some(*expires),
            Pairing::Joiner { deadline, .. } => Some(*deadline),
        }
    }

    pub fn needs_pairing_connection(&self) -> bool {
        matches!(self, Pairing::Joiner { step, .. } if !matches!(step, JoinerStep::Saving))
    }

    pub fn relay(&self) -> &RelayInfo {
        match self {
            Pairing::Joiner { relay, .. } => relay,
            Pairing::Inviter { .. } => &EMPTY_RELAY,
        }
    }

    pub fn connection_key(&self) -> &NoiseKeypair {
        match self {
            Pairing::Joiner { conn_key, .. } => conn_key,
            Pairing::Inviter { key, .. } => key,
        }
    }
}

static EMPTY_RELAY: RelayInfo = RelayInfo { endpoint_id: [0; 32], noise_key: NoisePublic([0; 32]), addrs: Vec::new() };

/// The joiner's XXpsk3 handshake and its first message, tagged for the slot.
fn joiner_handshake(
    rng: &mut crate::CoreRng,
    access_key: &NoiseKeypair,
    psk: &crate::keys::PairingPsk,
    slot: u32,
    pinned: Option<NoisePublic>,
) -> Option<(Box<PairingHandshake>, Bytes)> {
    let mut hs =
        PairingHandshake::new(rng, PairingRole::Joiner, access_key, psk, &pairing_prologue(slot), pinned).ok()?;
    let m1 = hs.write(&[]).ok()?;
    Some((Box::new(hs), tagged(TAG_HANDSHAKE, &m1)))
}

impl Client {
    pub(super) fn create_invite(&mut self) -> Result<(), CommandError> {
        if self.membership.is_none() {
            return Err(CommandError::NotInGroup);
        }
        if self.pairing.is_some() {
            return Err(CommandError::PairingBusy);
        }
        if !self.phase.is_online() {
            return Err(CommandError::NotConnected);
        }
        let expires_ms = self.now.unix_ms + self.config.invite_ttl.as_millis();
        self.pairing = Some(Pairing::Inviter {
            code: ShortCode::generate(&mut self.rng),
            qr_secret: InviteSecret::random(&mut self.rng),
            key: NoiseKeypair::generate(&mut self.rng),
            expires: self.now.mono + self.config.invite_ttl,
            expires_ms,
            failures: 0,
            taken: 0,
            step: InviterStep::Registering,
        });
        self.register_slot();
        Ok(())
    }

    fn register_slot(&mut self) {
        if let Some(Pairing::Inviter { code, expires_ms, .. }) = &self.pairing {
            let frame = Frame::SlotRegister(SlotRegister { slot: code.slot(), expires_at_ms: *expires_ms });
            self.send_frame(&frame);
        }
    }

    pub(super) fn cancel_invite(&mut self) {
        if let Some(Pairing::Inviter { code, .. }) = &self.pairing {
            let slot = code.slot();
            self.send_frame(&Frame::SlotClose(SlotClose { slot, reason: SlotCloseReason::Cancelled }));
            self.pairing = None;
            self.event(ClientEvent::InviteClosed);
        }
    }

    pub(super) fn join_invite(&mut self, text: &str) -> Result<(), CommandError> {
        if self.membership.is_some() || self.saving_membership {
            return Err(CommandError::AlreadyInGroup);
        }
        if self.pairing.is_some() {
            return Err(CommandError::PairingBusy);
        }
        let code = InviteCode::parse(text, self.now.unix_ms)?;
        let relay = match &code {
            InviteCode::Qr(q) => {
                RelayInfo { endpoint_id: q.relay_endpoint, noise_key: q.relay_key, addrs: q.relay_addrs.clone() }
            }
            InviteCode::Short(_) => self.default_relay(),
        };
        self.pairing = Some(Pairing::Joiner {
            code: Box::new(code),
            relay,
            conn_key: NoiseKeypair::generate(&mut self.rng),
            access_key: NoiseKeypair::generate(&mut self.rng),
            deadline: self.now.mono + JOIN_TIMEOUT,
            step: JoinerStep::Connecting,
        });
        self.connect_now();
        Ok(())
    }

    /// The joiner's pairing connection is up: attach to the slot and start.
    pub(super) fn pairing_connected(&mut self) {
        let Some(Pairing::Joiner { code, access_key, step, .. }) = &mut self.pairing else {
            return;
        };
        let slot = code.slot();
        let (first, next) = match &**code {
            InviteCode::Short(short) => {
                let (spake, msg) = SpakeExchange::start(short, &mut self.rng);
                (tagged(TAG_SPAKE, &msg), JoinerStep::Spake(Box::new(spake)))
            }
            InviteCode::Qr(qr) => {
                let psk = qr_psk(&qr.secret, slot);
                let Some((hs, m1)) = joiner_handshake(&mut self.rng, access_key, &psk, slot, Some(qr.inviter_key))
                else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                (m1, JoinerStep::Handshake(hs))
            }
        };
        *step = next;
        self.send_frame(&Frame::SlotOpen(SlotOpen { slot }));
        self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: first }));
    }

    /// The member connection is (again) online: an inviter whose slot was lost re-registers.
    pub(super) fn pairing_member_online(&mut self) {
        if let Some(Pairing::Inviter { step, .. }) = &mut self.pairing {
            *step = InviterStep::Registering;
            self.register_slot();
        }
    }

    pub(super) fn on_pairing_frame(&mut self, frame: Frame) {
        if let Frame::DeviceRegistered(r) = &frame {
            self.reregistering.remove(&r.access_key);
        }
        match (&self.pairing, frame) {
            (Some(Pairing::Inviter { .. }), Frame::SlotRegistered(_)) => self.invite_ready(),
            (Some(Pairing::Inviter { .. }), Frame::SlotOpen(_)) => self.set_inviter_step(InviterStep::Spake),
            (Some(Pairing::Inviter { .. }), Frame::SlotMessage(m)) => self.inviter_message(m.slot, &m.data),
            (Some(Pairing::Inviter { .. }), Frame::SlotClose(c)) => match c.reason {
                SlotCloseReason::Expired | SlotCloseReason::Cancelled => self.invite_closed(),
                _ => self.set_inviter_step(InviterStep::Waiting),
            },
            (Some(Pairing::Inviter { .. }), Frame::DeviceRegistered(r)) => self.save_introduced(r.access_key),
            (Some(Pairing::Joiner { .. }), Frame::SlotMessage(m)) => self.joiner_message(&m.data),
            (Some(Pairing::Joiner { .. }), Frame::SlotClose(c)) => {
                let reason = if c.reason == SlotCloseReason::Failed {
                    PairingFailure::WrongCode
                } else {
                    PairingFailure::InviteUnavailable
                };
                self.join_failed(reason)
            }
            _ => {}
        }
    }

    /// Relay errors that belong to a pairing; true if handled.
    pub(super) fn pairing_error(&mut self, code: ErrorCode) -> bool {
        match (&self.pairing, code) {
            (Some(Pairing::Inviter { step: InviterStep::Registering, .. }), ErrorCode::SlotTaken) => {
                let Some(Pairing::Inviter { code: c, taken, .. }) = &mut self.pairing else { return true };
                *taken += 1;
                if *taken > MAX_SLOT_RETRIES {
                    // Slot after slot taken: someone holds them all, or the relay lies. Not an
                    // endless loop of registrations.
                    self.pairing = None;
                    self.event(ClientEvent::PairingFailed { reason: PairingFailure::RelayUnavailable });
                    self.event(ClientEvent::InviteClosed);
                    return true;
                }
                *c = ShortCode::generate(&mut self.rng);
                self.register_slot();
                true
            }
            (Some(Pairing::Joiner { .. }), ErrorCode::NotFound | ErrorCode::RateLimited | ErrorCode::Expired) => {
                self.join_failed(PairingFailure::InviteUnavailable);
                true
            }
            _ => false,
        }
    }

    fn set_inviter_step(&mut self, next: InviterStep) {
        if let Some(Pairing::Inviter { step, .. }) = &mut self.pairing {
            *step = next;
        }
    }

    fn invite_ready(&mut self) {
        let Some(Pairing::Inviter { code, qr_secret, key, expires_ms, step, .. }) = &mut self.pairing else {
            return;
        };
        if !matches!(step, InviterStep::Registering) {
            return;
        }
        *step = InviterStep::Waiting;
        let Some(m) = &self.membership else { return };
        let qr = QrInvite {
            slot: code.slot(),
            secret: qr_secret.clone(),
            inviter_key: key.public(),
            inviter_endpoint: self.config.endpoint_id,
            relay_endpoint: m.relay.endpoint_id,
            relay_key: m.relay.noise_key,
            relay_addrs: m.relay.addrs.iter().take(crate::invite::MAX_ADDR_HINTS).cloned().collect(),
            expires_at_ms: *expires_ms,
        };
        let qr_text = qr.to_text().map(|t| t.to_string()).unwrap_or_default();
        let e = ClientEvent::InviteReady { short_code: code.display(), qr_text, expires_at_ms: *expires_ms };
        self.event(e);
    }

    fn inviter_message(&mut self, slot: u32, data: &[u8]) {
        let Some(Pairing::Inviter { code, qr_secret, key, step, .. }) = &mut self.pairing else {
            return;
        };
        let Some((&tag, body)) = data.split_first() else {
            return self.attempt_failed(slot);
        };
        let prologue = pairing_prologue(slot);
        match (std::mem::replace(step, InviterStep::Waiting), tag) {
            (InviterStep::Spake, TAG_SPAKE) => {
                let (spake, reply) = SpakeExchange::start(code, &mut self.rng);
                let Ok(psk) = spake.finish(body) else {
                    return self.attempt_failed(slot);
                };
                let Ok(hs) = PairingHandshake::new(&mut self.rng, PairingRole::Inviter, key, &psk, &prologue, None)
                else {
                    return self.attempt_failed(slot);
                };
                *step = InviterStep::Handshake(Box::new(hs));
                self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: tagged(TAG_SPAKE, &reply) }));
            }
            (InviterStep::Spake, TAG_HANDSHAKE) => {
                let psk = qr_psk(qr_secret, slot);
                let Ok(hs) = PairingHandshake::new(&mut self.rng, PairingRole::Inviter, key, &psk, &prologue, None)
                else {
                    return self.attempt_failed(slot);
                };
                *step = InviterStep::Handshake(Box::new(hs));
                self.inviter_handshake(slot, body);
            }
            (InviterStep::Handshake(hs), TAG_HANDSHAKE) => {
                *step = InviterStep::Handshake(hs);
                self.inviter_handshake(slot, body);
            }
            _ => self.attempt_failed(slot),
        }
    }

    fn inviter_handshake(&mut self, slot: u32, message: &[u8]) {
        let Some(Pairing::Inviter { step, .. }) = &mut self.pairing else {
            return;
        };
        let InviterStep::Handshake(mut hs) = std::mem::replace(step, InviterStep::Waiting) else {
            return;
        };
        let Ok(payload) = hs.read(message) else {
            return self.attempt_failed(slot);
        };
        if !hs.is_finished() {
            let Ok(m2) = hs.write(&[]) else {
                return self.attempt_failed(slot);
            };
            *step = InviterStep::Handshake(hs);
            return self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: tagged(TAG_HANDSHAKE, &m2) }));
        }
        let Ok(request) = JoinRequest::from_bytes(&payload) else {
            return self.attempt_failed(slot);
        };
        let Ok((session, remote, code)) = hs.finish() else {
            return self.attempt_failed(slot);
        };
        if remote.0 != request.access_key {
            return self.attempt_failed(slot);
        }
        *step = InviterStep::Registering2 {
            session: Box::new(session),
            access_key: request.access_key,
            device: request.device_id,
        };
        self.event(ClientEvent::PairingConfirmation { code });
        self.send_frame(&Frame::RegisterDevice(RegisterDevice { access_key: request.access_key }));
    }

    fn send_welcome(&mut self, registered: [u8; 32]) {
        let Some(Pairing::Inviter { code, step, .. }) = &mut self.pairing else {
            return;
        };
        let slot = code.slot();
        if !matches!(step, InviterStep::Registering2 { access_key, .. } if *access_key == registered) {
            return;
        }
        let InviterStep::Registering2 { mut session, device, .. } = std::mem::replace(step, InviterStep::Waiting)
        else {
            return;
        };
        let Some(m) = &self.membership else { return };
        let welcome = GroupWelcome {
            group_id: m.group_id.clone(),
            epoch: m.epoch,
            epoch_secret: m.epoch_secret.clone(),
            relay_endpoint: m.relay.endpoint_id,
            relay_key: m.relay.noise_key,
            relay_addrs: m.relay.addrs.iter().take(crate::invite::MAX_ADDR_HINTS).cloned().collect(),
        };
        let Ok(sealed) = session.encrypt(&welcome.to_bytes()) else {
            return self.attempt_failed(slot);
        };
        self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: tagged(TAG_TRANSPORT, &sealed) }));
        self.send_frame(&Frame::SlotClose(SlotClose { slot, reason: SlotCloseReason::Done }));
        self.event(ClientEvent::DeviceAdded { device: crate::keys::DeviceId(device) });
        self.pairing = None;
        self.event(ClientEvent::InviteClosed);
    }

    /// The relay registered the joiner's access key: this device records it durably (the
    /// newest [`MAX_INTRODUCED`]) before it lets the joiner in, so it can register the key
    /// again should the relay forget it (see [`Self::register_introduced_again`]).
    fn save_introduced(&mut self, access_key: [u8; 32]) {
        let Some(Pairing::Inviter { step: InviterStep::Registering2 { access_key: expected, .. }, .. }) = &self.pairing
        else {
            return;
        };
        let Some(m) = self.membership.as_ref().filter(|_| *expected == access_key) else {
            // Another key's registration (one registered again after a rewritten history).
            return;
        };
        let mut m = m.clone();
        m.introduced.retain(|k| *k != access_key);
        m.introduced.push(access_key);
        let excess = m.introduced.len().saturating_sub(MAX_INTRODUCED);
        m.introduced.drain(..excess);
        let request = super::ClientStoreOp::SaveMembership(Box::new(m.clone()));
        self.store(request, super::OpKind::SaveIntroduced { membership: Box::new(m), access_key });
    }

    pub(super) fn introduced_saved(
        &mut self,
        membership: Membership,
        access_key: [u8; 32],
        result: super::StoreResult,
    ) {
        if result.is_err() {
            // Not let in unrecorded: the joiner is told the invite is gone and can ask again.
            let Some(Pairing::Inviter { code, .. }) = &self.pairing else { return };
            let slot = code.slot();
            self.send_frame(&Frame::SlotClose(SlotClose { slot, reason: SlotCloseReason::Cancelled }));
            self.pairing = None;
            self.event(ClientEvent::PairingFailed { reason: PairingFailure::Storage });
            return self.event(ClientEvent::InviteClosed);
        }
        self.membership = Some(membership);
        self.send_welcome(access_key);
    }

    /// At every connection: registers again the access keys of the devices this one invited
    /// (a relay restored from a backup older than a pairing forgot them, and a device refused
    /// at the door cannot say so). Idempotent, and answered without a write when known.
    pub(super) fn register_introduced_again(&mut self) {
        #[cfg(feature = "planted-bugs")]
        if self.config.bugs.no_reregistration {
            return;
        }
        self.reregistering = self.membership.iter().flat_map(|m| m.introduced.iter().copied()).collect();
        self.resend_registrations();
    }

    /// Sends the registrations not yet answered (again, after the relay refused a request).
    pub(super) fn resend_registrations(&mut self) {
        for access_key in self.reregistering.clone() {
            self.send_frame(&Frame::RegisterDevice(RegisterDevice { access_key }));
        }
    }

    fn attempt_failed(&mut self, slot: u32) {
        let Some(Pairing::Inviter { failures, step, .. }) = &mut self.pairing else {
            return;
        };
        *failures += 1;
        *step = InviterStep::Waiting;
        let out_of_attempts = *failures >= MAX_FAILURES;
        // The joiner learns that its code was wrong, also on the last attempt; then the slot
        // closes for good.
        self.send_frame(&Frame::SlotClose(SlotClose { slot, reason: SlotCloseReason::Failed }));
        self.event(ClientEvent::PairingFailed { reason: PairingFailure::WrongCode });
        if out_of_attempts {
            self.send_frame(&Frame::SlotClose(SlotClose { slot, reason: SlotCloseReason::Cancelled }));
            self.invite_closed();
        }
    }

    fn invite_closed(&mut self) {
        self.pairing = None;
        self.event(ClientEvent::InviteClosed);
    }

    fn joiner_message(&mut self, data: &[u8]) {
        let Some(Pairing::Joiner { code, access_key, step, .. }) = &mut self.pairing else {
            return;
        };
        let slot = code.slot();
        let Some((&tag, body)) = data.split_first() else {
            return self.join_failed(PairingFailure::WrongCode);
        };
        match (std::mem::replace(step, JoinerStep::Connecting), tag) {
            (JoinerStep::Spake(spake), TAG_SPAKE) => {
                let Ok(psk) = spake.finish(body) else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                let Some((hs, m1)) = joiner_handshake(&mut self.rng, access_key, &psk, slot, None) else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                *step = JoinerStep::Handshake(hs);
                self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: m1 }));
            }
            (JoinerStep::Handshake(mut hs), TAG_HANDSHAKE) => {
                match hs.read(body) {
                    Ok(_) => {}
                    // A QR code names the inviter's key: another key is the relay standing in
                    // for an invite it no longer holds (used, or its attempts spent).
                    Err(crate::noise::HandshakeError::PinnedKeyMismatch) => {
                        return self.join_failed(PairingFailure::InviteUnavailable);
                    }
                    Err(_) => return self.join_failed(PairingFailure::WrongCode),
                }
                let request = JoinRequest::new(access_key.public(), self.config.device.device_id());
                let Ok(m3) = hs.write(&request.to_bytes()) else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                let Ok((session, _, code)) = hs.finish() else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                *step = JoinerStep::Welcome(Box::new(session));
                self.send_frame(&Frame::SlotMessage(SlotMessage { slot, data: tagged(TAG_HANDSHAKE, &m3) }));
                self.event(ClientEvent::PairingConfirmation { code });
            }
            (JoinerStep::Welcome(mut session), TAG_TRANSPORT) => {
                let welcome = session.decrypt(body).ok().and_then(|b| GroupWelcome::from_bytes(&b).ok());
                let Some(w) = welcome else {
                    return self.join_failed(PairingFailure::WrongCode);
                };
                *step = JoinerStep::Saving;
                let membership = Membership {
                    group_id: w.group_id,
                    epoch: w.epoch,
                    epoch_secret: w.epoch_secret,
                    access_key: access_key.clone(),
                    relay: RelayInfo { endpoint_id: w.relay_endpoint, noise_key: w.relay_key, addrs: w.relay_addrs },
                    pending_creation: None,
                    introduced: Vec::new(),
                };
                self.drop_connection(DisconnectReason::Local);
                self.phase = super::conn::Phase::Idle;
                self.save_membership(membership, true);
            }
            _ => self.join_failed(PairingFailure::WrongCode),
        }
    }

    fn join_failed(&mut self, reason: PairingFailure) {
        if !matches!(self.pairing, Some(Pairing::Joiner { .. })) {
            return;
        }
        self.pairing = None;
        self.event(ClientEvent::PairingFailed { reason });
        if self.phase.is_pairing_online() || self.phase.conn().is_some() {
            self.drop_connection(DisconnectReason::Local);
        }
        self.phase = super::conn::Phase::Idle;
        self.connect_now();
    }

    /// The joined membership is durable: sync as a member from now on.
    pub(super) fn pairing_joined(&mut self) {
        self.pairing = None;
        self.enabled = true;
    }

    pub(super) fn pairing_storage_failed(&mut self) {
        self.pairing = None;
        self.event(ClientEvent::PairingFailed { reason: PairingFailure::Storage });
    }

    pub(super) fn pairing_connection_lost(&mut self) {
        match &self.pairing {
            Some(Pairing::Joiner { step: JoinerStep::Saving, .. }) | None => {}
            Some(Pairing::Joiner { .. }) => {
                self.pairing = None;
                self.event(ClientEvent::PairingFailed { reason: PairingFailure::RelayUnavailable });
            }
            Some(Pairing::Inviter { .. }) => self.set_inviter_step(InviterStep::Registering),
        }
    }

    pub(super) fn pairing_timeout(&mut self) {
        let now = self.now.mono;
        match &self.pairing {
            Some(Pairing::Inviter { expires, .. }) if *expires <= now => self.cancel_invite(),
            Some(Pairing::Joiner { deadline, .. }) if *deadline <= now => {
                self.join_failed(PairingFailure::InviteUnavailable)
            }
            _ => {}
        }
    }
}
