//! Invites and pairing: the QR payload, the short code, SPAKE2, and the pairing messages.

mod pairing;
mod qr;
mod short_code;
mod spake;

pub use pairing::{GroupWelcome, JoinRequest, pairing_prologue};
pub(crate) use pairing::{TAG_HANDSHAKE, TAG_SPAKE, TAG_TRANSPORT, tagged};
pub use qr::{MAX_ADDR_HINTS, MAX_ADDR_LEN, MAX_QR_TEXT, QR_PREFIX, QR_VERSION, QrInvite, qr_svg_data_url};
pub use short_code::{SECRET_BITS, SHORT_CODE_CHARS, SLOT_BITS, ShortCode};
pub use spake::{SpakeExchange, qr_psk};

use thiserror::Error;

/// Why an invite was refused. Typos are caught here, locally, before any network use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InviteError {
    /// A short code needs exactly 16 characters (hyphens aside).
    #[error("a short code has 16 characters, like XXXX-XXXX-XXXX-XXXX")]
    WrongLength,
    /// A character outside Crockford base32.
    #[error("the code contains a character that is not in the code alphabet")]
    InvalidCharacter,
    /// The check symbol does not match: a typo.
    #[error("the code has a typo (check character mismatch)")]
    Checksum,
    /// Not a valid invite.
    #[error("malformed invite")]
    Malformed,
    /// An invite version this build does not read.
    #[error("unsupported invite version")]
    UnsupportedVersion,
    /// The invite has expired.
    #[error("the invite has expired")]
    Expired,
    /// Too long to be an invite.
    #[error("invite too long")]
    TooLong,
    /// The peer reflected our own SPAKE2 message.
    #[error("reflected pairing message")]
    Reflected,
}

/// What a user typed or scanned into "join".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteCode {
    /// A hand-typed short code (the relay comes from the app's configuration).
    Short(ShortCode),
    /// A scanned QR invite, carrying the relay address and the inviter's key.
    Qr(QrInvite),
}

impl InviteCode {
    /// Parses either form; expiry of a QR invite is checked against `now_unix_ms`.
    pub fn parse(input: &str, now_unix_ms: u64) -> Result<Self, InviteError> {
        let trimmed = input.trim();
        let looks_qr = trimmed.get(..QR_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(QR_PREFIX));
        if looks_qr {
            let qr = QrInvite::from_text(trimmed)?;
            qr.check_expiry(now_unix_ms)?;
            Ok(InviteCode::Qr(qr))
        } else {
            ShortCode::parse(trimmed).map(InviteCode::Short)
        }
    }

    /// The relay slot the inviter waits on.
    pub fn slot(&self) -> u32 {
        match self {
            InviteCode::Short(c) => c.slot(),
            InviteCode::Qr(q) => q.slot,
        }
    }
}
