//! The QR invite: everything a joiner needs, with a full 256-bit secret, as text for a QR code.
//!
//! Binary: `version (1) || postcard(QrWire)`; text: `0KSYNC:` + Crockford base32 of the
//! binary, which QR encodes in its compact alphanumeric mode.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::InviteError;
use crate::keys::{InviteSecret, NoisePublic};
use crate::wire::decode_canonical;

/// Version byte of the QR payload.
pub const QR_VERSION: u8 = 1;
/// Text prefix of a QR invite.
pub const QR_PREFIX: &str = "0KSYNC:";
/// Most relay address hints carried.
pub const MAX_ADDR_HINTS: usize = 4;
/// Longest address hint, in bytes.
pub const MAX_ADDR_LEN: usize = 128;
/// Longest invite text accepted before decoding.
pub const MAX_QR_TEXT: usize = 1200;

/// The contents of a QR invite.
#[derive(Clone, PartialEq, Eq)]
pub struct QrInvite {
    /// The relay slot the inviter waits on (the invite id).
    pub slot: u32,
    /// The 256-bit pairing secret.
    pub secret: InviteSecret,
    /// The inviter's Noise static key, pinned by the joiner during the handshake.
    pub inviter_key: NoisePublic,
    /// The inviter's transport endpoint id.
    pub inviter_endpoint: [u8; 32],
    /// The relay's transport endpoint id.
    pub relay_endpoint: [u8; 32],
    /// The relay's Noise static key.
    pub relay_key: NoisePublic,
    /// Where the relay may be reached (`host:port`, URLs), most preferred first.
    pub relay_addrs: Vec<String>,
    /// Unix milliseconds after which the invite is void.
    pub expires_at_ms: u64,
}

impl core::fmt::Debug for QrInvite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QrInvite")
            .field("slot", &self.slot)
            .field("relay_addrs", &self.relay_addrs)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct QrWire {
    slot: u32,
    secret: [u8; 32],
    inviter_key: [u8; 32],
    inviter_endpoint: [u8; 32],
    relay_endpoint: [u8; 32],
    relay_key: [u8; 32],
    relay_addrs: Vec<String>,
    expires_at_ms: u64,
}

impl Drop for QrWire {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl QrInvite {
    /// The binary payload.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, InviteError> {
        self.check_hints()?;
        let wire = QrWire {
            slot: self.slot,
            secret: *self.secret.expose(),
            inviter_key: self.inviter_key.0,
            inviter_endpoint: self.inviter_endpoint,
            relay_endpoint: self.relay_endpoint,
            relay_key: self.relay_key.0,
            relay_addrs: self.relay_addrs.clone(),
            expires_at_ms: self.expires_at_ms,
        };
        let mut out = Zeroizing::new(vec![QR_VERSION]);
        let body = Zeroizing::new(postcard::to_stdvec(&wire).map_err(|_| InviteError::Malformed)?);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses the binary payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InviteError> {
        let (version, body) = bytes.split_first().ok_or(InviteError::Malformed)?;
        if *version != QR_VERSION {
            return Err(InviteError::UnsupportedVersion);
        }
        let wire: QrWire = decode_canonical(body).map_err(|_| InviteError::Malformed)?;
        let invite = QrInvite {
            slot: wire.slot,
            secret: InviteSecret::from_bytes(wire.secret),
            inviter_key: NoisePublic(wire.inviter_key),
            inviter_endpoint: wire.inviter_endpoint,
            relay_endpoint: wire.relay_endpoint,
            relay_key: NoisePublic(wire.relay_key),
            relay_addrs: wire.relay_addrs.clone(),
            expires_at_ms: wire.expires_at_ms,
        };
        invite.check_hints()?;
        if invite.slot >= 1 << super::short_code::SLOT_BITS {
            return Err(InviteError::Malformed);
        }
        Ok(invite)
    }

    /// The text put in the QR code and accepted by `joinInvite`.
    pub fn to_text(&self) -> Result<Zeroizing<String>, InviteError> {
        let bytes = self.to_bytes()?;
        let mut text = Zeroizing::new(String::from(QR_PREFIX));
        text.push_str(&crockford().encode(&bytes));
        Ok(text)
    }

    /// Parses invite text (prefix case-insensitive).
    pub fn from_text(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.len() > MAX_QR_TEXT {
            return Err(InviteError::TooLong);
        }
        let body = strip_prefix_ignore_case(text, QR_PREFIX).ok_or(InviteError::Malformed)?;
        let bytes = Zeroizing::new(crockford().decode(body.as_bytes()).map_err(|_| InviteError::Malformed)?);
        Self::from_bytes(&bytes)
    }

    /// Refuses the invite at or after its expiry.
    pub fn check_expiry(&self, now_unix_ms: u64) -> Result<(), InviteError> {
        if now_unix_ms >= self.expires_at_ms { Err(InviteError::Expired) } else { Ok(()) }
    }

    /// The QR code of [`Self::to_text`] as an SVG `data:` URL for an `<img src>`.
    pub fn qr_data_url(&self) -> Result<String, InviteError> {
        qr_svg_data_url(&self.to_text()?)
    }

    fn check_hints(&self) -> Result<(), InviteError> {
        if self.relay_addrs.len() > MAX_ADDR_HINTS || self.relay_addrs.iter().any(|a| a.len() > MAX_ADDR_LEN) {
            return Err(InviteError::TooLong);
        }
        Ok(())
    }
}

/// Renders `text` as a QR code (error correction M) in an SVG `data:` URL.
pub fn qr_svg_data_url(text: &str) -> Result<String, InviteError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| InviteError::TooLong)?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build();
    let mut url = String::from("data:image/svg+xml;base64,");
    url.push_str(&base64::engine::general_purpose::STANDARD.encode(svg.as_bytes()));
    Ok(url)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| text.get(prefix.len()..)).flatten()
}

fn crockford() -> data_encoding::Encoding {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    spec.translate.from.push_str("abcdefghjkmnpqrstvwxyzILOilo");
    spec.translate.to.push_str("ABCDEFGHJKMNPQRSTVWXYZ110110");
    spec.check_trailing_bits = true;
    // The specification is a constant known to be valid.
    spec.encoding().unwrap_or_else(|_| data_encoding::BASE32_NOPAD.clone())
}
