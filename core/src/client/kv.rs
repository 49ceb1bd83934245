//! A device's durable state as records of a key-value store (IndexedDB in the browser):
//! what each [`ClientStoreOp`] writes, and how a [`ClientState`] is read back. A driver applies
//! the writes of one operation in one transaction. Values are opaque bytes; the layout is:
//!
//! | key | value |
//! | --- | --- |
//! | `membership` | [`encode_membership`] |
//! | `next_seq`, `cursor`, `highest_head`, `trust_floor` | u64, little endian |
//! | `last_hash`, `log_chain` | 32 bytes |
//! | `outbox/<push id hex>` | seq (u64 LE) then the envelope (every own blob kept) |
//! | `sent/<push id hex>` | the cursor (u64 LE) it was acknowledged at: the outbox entry is sent |
//! | `sender/<device id hex>` | last seq (u64 LE), the last hash, then the last cursor (u64 LE; absent in older records), then its given-up stretches ([`encode_given_up`]; absent when none) |
//!
//! Received blobs go to a second table keyed by cursor ([`KvWrite::Inbox`]), so that a
//! driver can read "after cursor N" as a key range.

use data_encoding::HEXLOWER;

use super::state::{
    ClientState, ClientStoreOp, GivenUp, Membership, OutboxEntry, PendingCreation, ReceivedBlob, RelayInfo, SenderView,
};
use crate::keys::{DeviceId, EpochSecret, GroupId, NoiseKeypair, NoisePublic, NoiseSecret};

/// One write of a store operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvWrite {
    /// Set a state record.
    Put {
        /// Its key.
        key: String,
        /// Its value.
        value: Vec<u8>,
    },
    /// Remove a state record.
    Delete {
        /// Its key.
        key: String,
    },
    /// Add a received blob to the inbox, at its cursor.
    Inbox {
        /// The cursor (the key).
        cursor: u64,
        /// [`encode_blob`].
        value: Vec<u8>,
    },
}

/// A state record that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the stored device state is damaged (record {0:?})")]
pub struct KvError(pub String);

/// The writes of one operation, to be applied atomically.
pub fn writes(op: &ClientStoreOp) -> Vec<KvWrite> {
    let put = |key: &str, value: &[u8]| KvWrite::Put { key: key.to_owned(), value: value.to_vec() };
    match op {
        ClientStoreOp::SaveMembership(m) => vec![put("membership", &encode_membership(m))],
        ClientStoreOp::AppendOutbox { entries, next_seq, last_hash } => {
            let mut out: Vec<KvWrite> = entries
                .iter()
                .map(|e| KvWrite::Put {
                    key: outbox_key(&e.push_id),
                    value: [&e.seq.to_le_bytes()[..], &e.envelope].concat(),
                })
                .collect();
            out.push(put("next_seq", &next_seq.to_le_bytes()));
            out.push(put("last_hash", last_hash));
            out
        }
        ClientStoreOp::MarkSent { acked, highest_head } => {
            let mut out = sent_writes(acked);
            out.push(put("highest_head", &highest_head.to_le_bytes()));
            out
        }
        ClientStoreOp::Requeue { push_ids } => {
            push_ids.iter().map(|id| KvWrite::Delete { key: sent_key(id) }).collect()
        }
        ClientStoreOp::ForgetSent { push_ids } => push_ids
            .iter()
            .flat_map(|id| [KvWrite::Delete { key: sent_key(id) }, KvWrite::Delete { key: outbox_key(id) }])
            .collect(),
        ClientStoreOp::Deliver { blobs, cursor, log_chain, senders, highest_head, trust_floor, sent } => {
            let mut out = sent_writes(sent);
            out.extend(blobs.iter().map(|b| KvWrite::Inbox { cursor: b.cursor, value: encode_blob(b) }));
            for (device, view) in senders {
                let value = [
                    &view.last_seq.to_le_bytes()[..],
                    &view.last_hash,
                    &view.last_cursor.to_le_bytes(),
                    &encode_given_up(&view.given_up),
                ]
                .concat();
                out.push(KvWrite::Put { key: format!("sender/{}", hex(&device.0)), value });
            }
            out.push(put("cursor", &cursor.to_le_bytes()));
            out.push(match log_chain {
                Some(c) => put("log_chain", c),
                None => KvWrite::Delete { key: "log_chain".into() },
            });
            out.push(put("highest_head", &highest_head.to_le_bytes()));
            out.push(put("trust_floor", &trust_floor.to_le_bytes()));
            out
        }
    }
}

/// Reads the state back from every state record (in any order; unknown keys are ignored).
pub fn load<'a>(records: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<ClientState, KvError> {
    let mut state = ClientState { next_seq: 1, ..ClientState::default() };
    let mut sent = std::collections::BTreeMap::new();
    for (key, value) in records {
        let bad = || KvError(key.to_owned());
        match key {
            "membership" => state.membership = Some(decode_membership(value).ok_or_else(bad)?),
            "next_seq" => state.next_seq = u64_of(value).ok_or_else(bad)?,
            "cursor" => state.cursor = u64_of(value).ok_or_else(bad)?,
            "highest_head" => state.highest_head = u64_of(value).ok_or_else(bad)?,
            "trust_floor" => state.trust_floor = u64_of(value).ok_or_else(bad)?,
            "last_hash" => state.last_hash = value.try_into().map_err(|_| bad())?,
            "log_chain" => state.log_chain = Some(value.try_into().map_err(|_| bad())?),
            _ => {
                if let Some(id) = key.strip_prefix("outbox/") {
                    let mut r = Reader(value);
                    let seq = u64::from_le_bytes(r.array().ok_or_else(bad)?);
                    let push_id = unhex(id).ok_or_else(bad)?;
                    state.outbox.push(OutboxEntry { push_id, seq, envelope: r.0.to_vec() });
                } else if let Some(id) = key.strip_prefix("sent/") {
                    sent.insert(unhex::<16>(id).ok_or_else(bad)?, u64_of(value).ok_or_else(bad)?);
                } else if let Some(id) = key.strip_prefix("sender/") {
                    let mut r = Reader(value);
                    let last_seq = u64::from_le_bytes(r.array().ok_or_else(bad)?);
                    let last_hash = r.array().ok_or_else(bad)?;
                    let last_cursor = if r.0.is_empty() { 0 } else { u64::from_le_bytes(r.array().ok_or_else(bad)?) };
                    let given_up = decode_given_up(r.0).ok_or_else(bad)?;
                    let view = SenderView { last_seq, last_hash, last_cursor, given_up };
                    state.senders.insert(DeviceId(unhex(id).ok_or_else(bad)?), view);
                }
            }
        }
    }
    state.outbox.sort_by_key(|e| e.seq);
    split_sent(&mut state, &sent);
    Ok(state)
}

/// Moves the outbox entries acknowledged at a cursor (`sent`: push id → cursor) from
/// [`ClientState::outbox`] to [`ClientState::sent`]. Every store keeps one table of own blobs
/// and marks the acknowledged ones.
pub fn split_sent(state: &mut ClientState, sent: &std::collections::BTreeMap<[u8; 16], u64>) {
    let (acked, waiting): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
        std::mem::take(&mut state.outbox).into_iter().partition(|e| sent.contains_key(&e.push_id));
    state.outbox = waiting;
    state.sent = acked.into_iter().filter_map(|e| Some((*sent.get(&e.push_id)?, e))).collect();
}

fn sent_writes(acked: &[([u8; 16], u64)]) -> Vec<KvWrite> {
    acked.iter().map(|(id, cursor)| KvWrite::Put { key: sent_key(id), value: cursor.to_le_bytes().to_vec() }).collect()
}

fn sent_key(push_id: &[u8; 16]) -> String {
    format!("sent/{}", hex(push_id))
}

fn outbox_key(push_id: &[u8; 16]) -> String {
    format!("outbox/{}", hex(push_id))
}

/// A received blob as bytes: cursor, push id, sender, seq, stored-at, then the payload.
pub fn encode_blob(b: &ReceivedBlob) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + b.payload.len());
    out.extend_from_slice(&b.cursor.to_le_bytes());
    out.extend_from_slice(&b.push_id);
    out.extend_from_slice(&b.sender.0);
    out.extend_from_slice(&b.seq.to_le_bytes());
    out.extend_from_slice(&b.stored_at_ms.to_le_bytes());
    out.extend_from_slice(&b.payload);
    out
}

/// Reads [`encode_blob`]'s bytes.
pub fn decode_blob(bytes: &[u8]) -> Option<ReceivedBlob> {
    let mut r = Reader(bytes);
    Some(ReceivedBlob {
        cursor: u64::from_le_bytes(r.array()?),
        push_id: r.array()?,
        sender: DeviceId(r.array()?),
        seq: u64::from_le_bytes(r.array()?),
        stored_at_ms: u64::from_le_bytes(r.array()?),
        payload: r.0.to_vec(),
    })
}

/// Membership as bytes: group id, epoch, epoch secret, access key secret, relay endpoint id,
/// relay Noise key, relay addresses (newline-separated), then an optional admission token.
pub fn encode_membership(m: &Membership) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    out.extend_from_slice(m.group_id.expose());
    out.extend_from_slice(&m.epoch.to_le_bytes());
    out.extend_from_slice(m.epoch_secret.expose());
    out.extend_from_slice(m.access_key.secret().expose());
    out.extend_from_slice(&m.relay.endpoint_id);
    out.extend_from_slice(&m.relay.noise_key.0);
    let addrs = m.relay.addrs.join("\n");
    out.extend_from_slice(&u32::try_from(addrs.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(addrs.as_bytes());
    // Tags 0 and 1 may be followed by the introduced keys; tag 2 (a token running to the end)
    // is only read, tag 5 is its length-prefixed successor.
    match &m.pending_creation {
        None => out.push(0),
        Some(PendingCreation { admission_token: None }) => out.push(1),
        Some(PendingCreation { admission_token: Some(t) }) => {
            out.push(5);
            out.extend_from_slice(&u32::try_from(t.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(t);
        }
    }
    if !m.introduced.is_empty() {
        out.extend_from_slice(&u32::try_from(m.introduced.len()).unwrap_or(u32::MAX).to_le_bytes());
        m.introduced.iter().for_each(|k| out.extend_from_slice(k));
    }
    out
}

/// Reads [`encode_membership`]'s bytes.
pub fn decode_membership(b: &[u8]) -> Option<Membership> {
    let mut r = Reader(b);
    let group_id = GroupId::from_bytes(r.array()?);
    let epoch = u32::from_le_bytes(r.array()?);
    let epoch_secret = EpochSecret::from_bytes(r.array()?);
    let access_key = NoiseKeypair::from_secret(NoiseSecret::from_bytes(r.array()?));
    let endpoint_id = r.array()?;
    let noise_key = NoisePublic(r.array()?);
    let len = u32::from_le_bytes(r.array()?) as usize;
    let addrs = String::from_utf8(r.take(len)?.to_vec()).ok()?;
    let pending_creation = match r.take(1)? {
        [0] => None,
        [1] => Some(PendingCreation { admission_token: None }),
        [5] => {
            let len = u32::from_le_bytes(r.array()?) as usize;
            Some(PendingCreation { admission_token: Some(r.take(len)?.to_vec()) })
        }
        _ => Some(PendingCreation { admission_token: Some(std::mem::take(&mut r.0).to_vec()) }),
    };
    let mut introduced = Vec::new();
    if !r.0.is_empty() {
        let count = u32::from_le_bytes(r.array()?) as usize;
        for _ in 0..count {
            introduced.push(r.array()?);
        }
    }
    let addrs = addrs.split('\n').filter(|a| !a.is_empty()).map(str::to_owned).collect();
    Some(Membership {
        group_id,
        epoch,
        epoch_secret,
        access_key,
        relay: RelayInfo { endpoint_id, noise_key, addrs },
        pending_creation,
        introduced,
    })
}

/// A sender's given-up stretches as bytes (empty for none): each next seq and last seq (u64
/// LE) and the hash the next must link to. Shared with the SQLite store's `given_up` column.
pub fn encode_given_up(stretches: &[GivenUp]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stretches.len() * 48);
    for g in stretches {
        out.extend_from_slice(&g.next_seq.to_le_bytes());
        out.extend_from_slice(&g.to_seq.to_le_bytes());
        out.extend_from_slice(&g.prev_hash);
    }
    out
}

/// Reads [`encode_given_up`]'s bytes.
pub fn decode_given_up(b: &[u8]) -> Option<Vec<GivenUp>> {
    let mut r = Reader(b);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let next_seq = u64::from_le_bytes(r.array()?);
        let to_seq = u64::from_le_bytes(r.array()?);
        out.push(GivenUp { next_seq, to_seq, prev_hash: r.array()? });
    }
    Some(out)
}

fn u64_of(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.try_into().ok()?))
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    HEXLOWER.decode(text.as_bytes()).ok()?.try_into().ok()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::BTreeMap;

    use super::*;

    /// Applies writes to an in-memory table pair, as a driver would.
    fn apply(state: &mut BTreeMap<String, Vec<u8>>, inbox: &mut BTreeMap<u64, Vec<u8>>, op: &ClientStoreOp) {
        for w in writes(op) {
            match w {
                KvWrite::Put { key, value } => {
                    state.insert(key, value);
                }
                KvWrite::Delete { key } => {
                    state.remove(&key);
                }
                KvWrite::Inbox { cursor, value } => {
                    inbox.insert(cursor, value);
                }
            }
        }
    }

    fn membership() -> Membership {
        let mut rng = crate::CoreRng::from_seed([1; 32]);
        Membership {
            group_id: GroupId::random(&mut rng),
            epoch: 3,
            epoch_secret: EpochSecret::random(&mut rng),
            access_key: NoiseKeypair::generate(&mut rng),
            relay: RelayInfo {
                endpoint_id: [4; 32],
                noise_key: NoisePublic([5; 32]),
                addrs: vec!["127.0.0.1:9".into(), "ws://127.0.0.1:8/sync".into()],
            },
            pending_creation: Some(PendingCreation { admission_token: Some(b"tok".to_vec()) }),
            introduced: vec![[6; 32], [7; 32]],
        }
    }

    #[test]
    fn a_membership_record_of_an_older_version_reads_with_no_introduced_keys() {
        let mut m = membership();
        m.introduced.clear();
        let mut old = encode_membership(&Membership { pending_creation: None, ..m.clone() });
        assert_eq!(old.pop(), Some(0), "no pending creation, no keys: the record ends with its tag");
        old.push(2);
        old.extend_from_slice(b"tok");
        assert_eq!(decode_membership(&old), Some(m), "tag 2: the token runs to the end");
        let mut with_keys = membership();
        with_keys.pending_creation = None;
        assert_eq!(decode_membership(&encode_membership(&with_keys)), Some(with_keys));
    }

    #[test]
    fn every_operation_reads_back() {
        let (mut state, mut inbox) = (BTreeMap::new(), BTreeMap::new());
        let m = membership();
        apply(&mut state, &mut inbox, &ClientStoreOp::SaveMembership(Box::new(m.clone())));
        let entries: Vec<OutboxEntry> =
            (1..=3).map(|seq| OutboxEntry { push_id: [seq as u8; 16], seq, envelope: vec![9; seq as usize] }).collect();
        apply(&mut state, &mut inbox, &ClientStoreOp::AppendOutbox { entries, next_seq: 4, last_hash: [8; 32] });
        let mark = ClientStoreOp::MarkSent { acked: vec![([2; 16], 4), ([1; 16], 3)], highest_head: 5 };
        apply(&mut state, &mut inbox, &mark);
        apply(&mut state, &mut inbox, &ClientStoreOp::Requeue { push_ids: vec![[1; 16]] });
        let blob = ReceivedBlob {
            cursor: 5,
            push_id: [2; 16],
            sender: DeviceId([3; 32]),
            seq: 1,
            payload: b"hi".to_vec(),
            stored_at_ms: 11,
        };
        let view = SenderView {
            last_seq: 1,
            last_hash: [6; 32],
            last_cursor: 5,
            given_up: vec![GivenUp { next_seq: 3, to_seq: 4, prev_hash: [2; 32] }],
        };
        let deliver = |log_chain| ClientStoreOp::Deliver {
            blobs: vec![blob.clone()],
            cursor: 5,
            log_chain,
            senders: vec![(DeviceId([3; 32]), view.clone())],
            highest_head: 6,
            trust_floor: 2,
            sent: Vec::new(),
        };
        apply(&mut state, &mut inbox, &deliver(Some([12; 32])));

        let loaded = load(state.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        assert_eq!(loaded.membership, Some(m));
        assert_eq!((loaded.next_seq, loaded.last_hash, loaded.cursor), (4, [8; 32], 5));
        assert_eq!((loaded.log_chain, loaded.highest_head, loaded.trust_floor), (Some([12; 32]), 6, 2));
        assert_eq!(loaded.outbox.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3], "in order, the sent one apart");
        assert_eq!(loaded.outbox[1].envelope, vec![9; 3]);
        assert_eq!(loaded.sent.iter().map(|(c, e)| (*c, e.seq)).collect::<Vec<_>>(), vec![(4, 2)], "requeued: unsent");
        assert_eq!(loaded.senders.get(&DeviceId([3; 32])), Some(&view));
        assert_eq!(inbox.get(&5).and_then(|v| decode_blob(v)).as_ref(), Some(&blob));

        apply(&mut state, &mut inbox, &deliver(None));
        apply(&mut state, &mut inbox, &ClientStoreOp::ForgetSent { push_ids: vec![[2; 16]] });
        let loaded = load(state.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        assert_eq!(loaded.log_chain, None, "a forgotten chain value is deleted");
        assert!(loaded.sent.is_empty() && loaded.outbox.len() == 2, "a forgotten sent blob is gone");
    }

    #[test]
    fn sender_records_without_a_cursor_still_load() {
        let old = [&7u64.to_le_bytes()[..], &[6; 32]].concat();
        let key = format!("sender/{}", hex(&[3; 32]));
        let loaded = load([(key.as_str(), old.as_slice())]).unwrap();
        assert_eq!(loaded.senders.get(&DeviceId([3; 32])).map(|v| (v.last_seq, v.last_cursor)), Some((7, 0)));
    }

    #[test]
    fn a_fresh_store_is_a_fresh_device_and_damage_is_an_error() {
        let fresh = load([]).unwrap();
        assert_eq!((fresh.next_seq, fresh.cursor, fresh.membership), (1, 0, None));
        assert_eq!(load([("cursor", &[1u8, 2][..])]), Err(KvError("cursor".into())));
        assert!(load([("membership", &[0u8; 10][..])]).is_err());
        assert!(load([("outbox/zz", &[0u8; 8][..])]).is_err());
        assert!(decode_blob(&[0; 20]).is_none());
    }
}
