//! Messages exchanged inside a pairing: the joiner's request (in Noise message 3) and the
//! inviter's group welcome (the first transport message after the handshake).

use serde::{Deserialize, Serialize};

use super::InviteError;
use crate::keys::{DeviceId, EpochSecret, GroupId, NoisePublic};
use crate::noise::PROTOCOL_VERSION;
use crate::wire::decode_canonical;

/// Slot message tags: the first byte of every pairing slot message.
pub(crate) const TAG_SPAKE: u8 = 1;
/// A Noise XXpsk3 handshake message.
pub(crate) const TAG_HANDSHAKE: u8 = 2;
/// A Noise transport message (the group welcome).
pub(crate) const TAG_TRANSPORT: u8 = 3;

/// A slot message body behind its tag.
pub(crate) fn tagged(tag: u8, body: &[u8]) -> crate::wire::Bytes {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(tag);
    v.extend_from_slice(body);
    crate::wire::Bytes(v)
}

/// The pairing prologue: domain label, protocol version and slot.
pub fn pairing_prologue(slot: u32) -> Vec<u8> {
    let mut p = b"0k-sync/pair/v1\0".to_vec();
    p.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p.extend_from_slice(&slot.to_be_bytes());
    p
}

/// Joiner → inviter, inside Noise message 3: who the new device is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The relay access key the joiner generated for this group; the inviter registers it.
    pub access_key: [u8; 32],
    /// The joiner's blob-signing identity.
    pub device_id: [u8; 32],
}

impl JoinRequest {
    /// A request for these keys.
    pub fn new(access_key: NoisePublic, device: DeviceId) -> Self {
        JoinRequest { access_key: access_key.0, device_id: device.0 }
    }

    /// Encodes for the handshake payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes a handshake payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InviteError> {
        decode_canonical(bytes).map_err(|_| InviteError::Malformed)
    }
}

/// Inviter → joiner, encrypted by the pairing session: everything needed to join the group.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupWelcome {
    /// The group.
    pub group_id: GroupId,
    /// The current key epoch.
    pub epoch: u32,
    /// The current epoch's secret.
    pub epoch_secret: EpochSecret,
    /// The relay's transport endpoint id.
    pub relay_endpoint: [u8; 32],
    /// The relay's Noise static key.
    pub relay_key: NoisePublic,
    /// Where the relay may be reached.
    pub relay_addrs: Vec<String>,
}

impl core::fmt::Debug for GroupWelcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupWelcome")
            .field("epoch", &self.epoch)
            .field("relay_addrs", &self.relay_addrs)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct WelcomeWire {
    version: u16,
    group_id: [u8; 32],
    epoch: u32,
    epoch_secret: [u8; 32],
    relay_endpoint: [u8; 32],
    relay_key: [u8; 32],
    relay_addrs: Vec<String>,
}

impl Drop for WelcomeWire {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.epoch_secret);
        zeroize::Zeroize::zeroize(&mut self.group_id);
    }
}

impl GroupWelcome {
    /// Encodes for the pairing session.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let wire = WelcomeWire {
            version: PROTOCOL_VERSION,
            group_id: *self.group_id.expose(),
            epoch: self.epoch,
            epoch_secret: *self.epoch_secret.expose(),
            relay_endpoint: self.relay_endpoint,
            relay_key: self.relay_key.0,
            relay_addrs: self.relay_addrs.clone(),
        };
        zeroize::Zeroizing::new(postcard::to_stdvec(&wire).unwrap_or_default())
    }

    /// Decodes a welcome.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InviteError> {
        let wire: WelcomeWire = decode_canonical(bytes).map_err(|_| InviteError::Malformed)?;
        if wire.version != PROTOCOL_VERSION {
            return Err(InviteError::UnsupportedVersion);
        }
        Ok(GroupWelcome {
            group_id: GroupId::from_bytes(wire.group_id),
            epoch: wire.epoch,
            epoch_secret: EpochSecret::from_bytes(wire.epoch_secret),
            relay_endpoint: wire.relay_endpoint,
            relay_key: NoisePublic(wire.relay_key),
            relay_addrs: wire.relay_addrs.clone(),
        })
    }
}
