use serde::{Deserialize, Serialize};

use super::{HandshakeError, IK_PATTERN, PROTOCOL_VERSION, Session, TAG_LEN, build};
use crate::CoreRng;
use crate::keys::{GroupId, NoiseKeypair, NoisePublic};
use crate::wire::{Bytes, decode_canonical};

/// What a device asks for when it connects to a relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Sync as a registered member of the group.
    Member,
    /// Create the group with the connecting key as its first member.
    CreateGroup {
        /// A relay admission token, if the relay requires one to create groups.
        admission_token: Option<Bytes>,
    },
    /// Reach a pairing slot only (a joining device with no membership yet).
    Pairing,
}

/// The first IK payload: encrypted to the relay's static key, so only the relay reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuth {
    /// The protocol version the device speaks.
    pub version: u16,
    /// The group addressed (all zero for [`Intent::Pairing`]).
    pub group_id: [u8; 32],
    /// Unix milliseconds; the relay refuses it outside its clock window or as an exact repeat.
    pub timestamp_ms: u64,
    /// What the device wants.
    pub intent: Intent,
}

impl ClientAuth {
    /// A payload for `group` at `timestamp_ms`.
    pub fn new(group: &GroupId, timestamp_ms: u64, intent: Intent) -> Self {
        ClientAuth { version: PROTOCOL_VERSION, group_id: *group.expose(), timestamp_ms, intent }
    }

    /// The addressed group.
    pub fn group(&self) -> GroupId {
        GroupId::from_bytes(self.group_id)
    }
}

/// The IK prologue: domain label, protocol version and both transport endpoint ids, so a
/// handshake cannot be moved to another connection or version.
pub fn ik_prologue(initiator_endpoint: &[u8; 32], responder_endpoint: &[u8; 32]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + 2 + 64);
    p.extend_from_slice(b"0k-sync/ik/v1\0\0\0");
    p.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p.extend_from_slice(initiator_endpoint);
    p.extend_from_slice(responder_endpoint);
    p
}

/// Device side of the IK handshake with a pinned relay key.
pub struct IkInitiator {
    state: snow::HandshakeState,
}

impl core::fmt::Debug for IkInitiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IkInitiator")
    }
}

impl IkInitiator {
    /// Starts a handshake; returns the state and the first message (to send as one record).
    pub fn start(
        rng: &mut CoreRng,
        access_key: &NoiseKeypair,
        relay_key: &NoisePublic,
        prologue: &[u8],
        auth: &ClientAuth,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::start_inner(rng, access_key, relay_key, prologue, auth, None)
    }

    pub(crate) fn start_inner(
        rng: &mut CoreRng,
        access_key: &NoiseKeypair,
        relay_key: &NoisePublic,
        prologue: &[u8],
        auth: &ClientAuth,
        fixed_ephemeral: Option<&[u8]>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        let mut state = ik_state(rng, access_key, Some(relay_key), prologue, fixed_ephemeral)?;
        let payload = postcard::to_stdvec(auth).map_err(|_| HandshakeError::Malformed)?;
        let msg = write(&mut state, &payload)?;
        Ok((IkInitiator { state }, msg))
    }

    /// Reads the relay's answer and completes the handshake.
    pub fn finish(mut self, message: &[u8]) -> Result<Session, HandshakeError> {
        let payload = read(&mut self.state, message)?;
        if !payload.is_empty() {
            return Err(HandshakeError::Malformed);
        }
        into_session(self.state)
    }
}

/// Relay side of the IK handshake, after the first message was read and before the relay
/// decides whether to admit the device.
pub struct IkResponder {
    state: snow::HandshakeState,
    auth: ClientAuth,
    remote: NoisePublic,
}

impl core::fmt::Debug for IkResponder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkResponder").field("remote", &self.remote).finish_non_exhaustive()
    }
}

impl IkResponder {
    /// Reads a device's first message. The caller then checks [`Self::auth`] (version, group,
    /// registered key, [`super::ReplayGuard`]) and either calls [`Self::accept`] or drops it.
    pub fn read_first(
        rng: &mut CoreRng,
        relay_key: &NoiseKeypair,
        prologue: &[u8],
        message: &[u8],
    ) -> Result<Self, HandshakeError> {
        Self::read_first_inner(rng, relay_key, prologue, message, None)
    }

    pub(crate) fn read_first_inner(
        rng: &mut CoreRng,
        relay_key: &NoiseKeypair,
        prologue: &[u8],
        message: &[u8],
        fixed_ephemeral: Option<&[u8]>,
    ) -> Result<Self, HandshakeError> {
        let mut state = ik_state(rng, relay_key, None, prologue, fixed_ephemeral)?;
        let payload = read(&mut state, message)?;
        let auth: ClientAuth = decode_canonical(&payload).map_err(|_| HandshakeError::Malformed)?;
        if auth.version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion(auth.version));
        }
        let remote = remote_static(&state)?;
        Ok(IkResponder { state, auth, remote })
    }

    /// What the device asked for.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// The device's static key (its per-group relay access key), authenticated by the handshake.
    pub fn remote_key(&self) -> NoisePublic {
        self.remote
    }

    /// Admits the device: returns the session and the answer message to send as one record.
    pub fn accept(mut self) -> Result<(Session, Vec<u8>), HandshakeError> {
        let msg = write(&mut self.state, &[])?;
        Ok((into_session(self.state)?, msg))
    }
}

/// An IK handshake state: the initiator knows the responder's key (`remote`), the responder
/// does not.
pub(super) fn ik_state(
    rng: &mut CoreRng,
    local: &NoiseKeypair,
    remote: Option<&NoisePublic>,
    prologue: &[u8],
    fixed_ephemeral: Option<&[u8]>,
) -> Result<snow::HandshakeState, HandshakeError> {
    let mut builder = build(IK_PATTERN, rng)?
        .local_private_key(local.secret().expose())
        .and_then(|b| b.prologue(prologue))
        .map_err(|_| HandshakeError::Malformed)?;
    if let Some(e) = fixed_ephemeral {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    match remote {
        Some(key) => builder.remote_public_key(&key.0).and_then(|b| b.build_initiator()),
        None => builder.build_responder(),
    }
    .map_err(|_| HandshakeError::Malformed)
}

pub(super) fn write(state: &mut snow::HandshakeState, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if !state.is_my_turn() {
        return Err(HandshakeError::OutOfOrder);
    }
    let mut msg = vec![0u8; payload.len() + 2 * 32 + 2 * TAG_LEN];
    let n = state.write_message(payload, &mut msg).map_err(|_| HandshakeError::Malformed)?;
    msg.truncate(n);
    Ok(msg)
}

pub(super) fn read(state: &mut snow::HandshakeState, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if state.is_my_turn() || state.is_handshake_finished() {
        return Err(HandshakeError::OutOfOrder);
    }
    let mut payload = vec![0u8; message.len()];
    let n = state.read_message(message, &mut payload).map_err(|_| HandshakeError::Rejected)?;
    payload.truncate(n);
    Ok(payload)
}

pub(super) fn remote_static(state: &snow::HandshakeState) -> Result<NoisePublic, HandshakeError> {
    state
        .get_remote_static()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(NoisePublic)
        .ok_or(HandshakeError::Rejected)
}

pub(super) fn into_session(state: snow::HandshakeState) -> Result<Session, HandshakeError> {
    let hash: [u8; 32] = state.get_handshake_hash().try_into().map_err(|_| HandshakeError::Malformed)?;
    let transport = state.into_transport_mode().map_err(|_| HandshakeError::OutOfOrder)?;
    Ok(Session::new(transport, hash))
}
