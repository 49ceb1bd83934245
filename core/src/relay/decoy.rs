//! The relay's stand-in for an invite it does not hold. A joiner that opens a missing, busy or
//! used-up slot meets a decoy inviter that answers like a live one whose code did not match:
//! a SPAKE2 reply, a Noise message 2 under a key of its own, then `SlotClose{Failed}`, each after
//! a round-trip-like delay. A stranger scanning slots learns nothing about which are live.

use std::collections::VecDeque;

use crate::CoreRng;
use crate::invite::{ShortCode, SpakeExchange, TAG_HANDSHAKE, TAG_SPAKE, pairing_prologue, qr_psk, tagged};
use crate::keys::{InviteSecret, NoiseKeypair, NoiseSecret, PairingPsk};
use crate::noise::{PairingHandshake, PairingRole};
use crate::time::{Duration, Instant};
use crate::wire::Bytes;

/// The shortest and longest delay before a decoy answers: a live inviter's answer crosses the
/// relay twice.
const DELAY_MS: (u64, u64) = (20, 250);

/// Replies a decoy holds back at most; a joiner that sends faster has failed.
const MAX_PENDING: usize = 4;

/// What a decoy sends when its delay is over.
#[derive(Debug)]
pub(crate) enum Reply {
    Message(Bytes),
    Failed,
}

enum Step {
    Spake,
    Handshake(Box<PairingHandshake>),
    Over,
}

pub(crate) struct Decoy {
    pub slot: u32,
    key: NoiseKeypair,
    step: Step,
    /// Replies waiting out their delay, oldest first.
    pending: VecDeque<(Instant, Reply)>,
    /// When the attempt fails at the latest, as a live attempt does.
    ends: Instant,
}

impl core::fmt::Debug for Decoy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoy").field("slot", &self.slot).field("pending", &self.pending.len()).finish_non_exhaustive()
    }
}

/// The decoy key of a slot: stable while the relay runs (a live inviter keeps one key for all
/// attempts on its invite), unrelated between slots and relays.
pub(crate) fn decoy_key(secret: &NoiseSecret, slot: u32) -> NoiseKeypair {
    let mut info = b"0k-sync decoy inviter v1".to_vec();
    info.extend_from_slice(&slot.to_be_bytes());
    NoiseKeypair::from_secret(NoiseSecret::from_bytes(*crate::crypto::hkdf_sha256_32(None, secret.expose(), &info)))
}

impl Decoy {
    pub fn new(slot: u32, key: NoiseKeypair, now: Instant) -> Self {
        Decoy { slot, key, step: Step::Spake, pending: VecDeque::new(), ends: now + super::slots::ATTEMPT_TIMEOUT }
    }

    /// A slot message from the joiner, answered as an inviter with another code would.
    pub fn receive(&mut self, data: &[u8], rng: &mut CoreRng, now: Instant) {
        if matches!(self.step, Step::Over) {
            return;
        }
        let reply = match self.answer(data, rng) {
            Some(message) if self.pending.len() < MAX_PENDING => Reply::Message(message),
            _ => {
                self.step = Step::Over;
                Reply::Failed
            }
        };
        let delay = Duration::from_millis(DELAY_MS.0 + rng.below(DELAY_MS.1 - DELAY_MS.0 + 1));
        let after = self.pending.back().map_or(now, |(t, _)| *t);
        self.pending.push_back(((now + delay).max(after), reply));
    }

    fn answer(&mut self, data: &[u8], rng: &mut CoreRng) -> Option<Bytes> {
        let (&tag, body) = data.split_first()?;
        let prologue = pairing_prologue(self.slot);
        match (std::mem::replace(&mut self.step, Step::Over), tag) {
            (Step::Spake, TAG_SPAKE) => {
                let code = ShortCode::from_parts(self.slot, rng.below(1 << crate::invite::SECRET_BITS))?;
                let (spake, reply) = SpakeExchange::start(&code, rng);
                let psk = spake.finish(body).ok()?;
                self.start_handshake(rng, &psk, &prologue)?;
                Some(tagged(TAG_SPAKE, &reply))
            }
            (Step::Spake, TAG_HANDSHAKE) => {
                let psk = qr_psk(&InviteSecret::random(rng), self.slot);
                self.start_handshake(rng, &psk, &prologue)?;
                self.handshake(body)
            }
            (Step::Handshake(hs), TAG_HANDSHAKE) => {
                self.step = Step::Handshake(hs);
                self.handshake(body)
            }
            _ => None,
        }
    }

    fn start_handshake(&mut self, rng: &mut CoreRng, psk: &PairingPsk, prologue: &[u8]) -> Option<()> {
        let hs = PairingHandshake::new(rng, PairingRole::Inviter, &self.key, psk, prologue, None).ok()?;
        self.step = Step::Handshake(Box::new(hs));
        Some(())
    }

    /// Message 1 is answered with message 2; message 3 never verifies (the psk is not the
    /// joiner's), which ends the attempt.
    fn handshake(&mut self, message: &[u8]) -> Option<Bytes> {
        let Step::Handshake(mut hs) = std::mem::replace(&mut self.step, Step::Over) else {
            return None;
        };
        hs.read(message).ok()?;
        if hs.is_finished() {
            return None;
        }
        let m2 = hs.write(&[]).ok()?;
        self.step = Step::Handshake(hs);
        Some(tagged(TAG_HANDSHAKE, &m2))
    }

    /// The next instant this decoy has something to do.
    pub fn next_due(&self) -> Instant {
        self.pending.front().map_or(self.ends, |(t, _)| (*t).min(self.ends))
    }

    /// Replies whose delay is over; a `Failed` (or the attempt's end) is the decoy's last.
    pub fn due(&mut self, now: Instant) -> Vec<Reply> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, reply)) = self.pending.pop_front() {
                out.push(reply);
            }
        }
        if self.ends <= now && !matches!(out.last(), Some(Reply::Failed)) {
            out.push(Reply::Failed);
        }
        out
    }
}
