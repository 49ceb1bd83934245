//! An adversarial relay: it rewrites what its store serves (flips bits, splices in a blob of
//! another group, drops, replays and reorders blobs) and can roll its store back to an old
//! snapshot or fork it into two worlds. Devices must never apply anything altered, and must
//! report what they can detect.

use std::collections::BTreeMap;

use zerok_core::CoreRng;
use zerok_core::envelope::{BlobCipher, BlobKind, ChainLink};
use zerok_core::keys::{DeviceSigningKey, EpochSecret, GroupId};
use zerok_core::wire::{Bytes, StoredBlob};

/// One misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// A bit of an envelope flipped.
    BitFlip,
    /// An envelope replaced by a valid envelope of another group.
    Splice,
    /// A blob left out of a page.
    Drop,
    /// A blob's envelope replaced by an earlier blob's envelope.
    Replay,
    /// Two envelopes of a page swapped.
    Reorder,
    /// The store rolled back to an old snapshot.
    Rollback,
    /// The log forked into two worlds: some devices saw one history, the others another.
    Fork,
}

/// The adversary's state: how often it strikes, and what it did.
pub struct Adversary {
    /// Chance, in percent, that a served page is tampered with.
    pub percent: u64,
    /// How often each attack was carried out.
    pub done: BTreeMap<Attack, u64>,
    /// Cursors whose envelope was hidden or moved in flight (dropped, replayed over,
    /// reordered): a device may never see what is stored there.
    pub hidden: std::collections::BTreeSet<u64>,
    /// Cursors the store has served at least once (a device may hold a clean copy).
    pub served: std::collections::BTreeSet<u64>,
    foreign: Vec<u8>,
}

impl Adversary {
    /// An adversary striking on `percent` % of pages.
    pub fn new(percent: u64, rng: &mut CoreRng) -> Self {
        let cipher = BlobCipher::new(&GroupId::random(rng), 0, &EpochSecret::random(rng));
        let signer = DeviceSigningKey::generate(rng);
        let foreign = cipher
            .seal(&signer, ChainLink { seq: 1, prev_hash: [0; 32] }, BlobKind::Data, b"from another group", rng)
            .map(|s| s.envelope)
            .unwrap_or_default();
        Adversary { percent, done: BTreeMap::new(), hidden: Default::default(), served: Default::default(), foreign }
    }

    /// Maybe rewrites a page the store is about to serve.
    pub fn tamper(&mut self, rng: &mut CoreRng, blobs: &mut Vec<StoredBlob>) {
        self.served.extend(blobs.iter().map(|b| b.cursor));
        if blobs.is_empty() || rng.below(100) >= self.percent {
            return;
        }
        let i = rng.below(blobs.len() as u64) as usize;
        let attack = match rng.below(5) {
            0 => Attack::BitFlip,
            1 => Attack::Splice,
            2 => Attack::Drop,
            3 if i > 0 => Attack::Replay,
            4 if blobs.len() > 1 => Attack::Reorder,
            _ => Attack::BitFlip,
        };
        match attack {
            Attack::BitFlip => {
                let env = &mut blobs[i].envelope.0;
                let bit = rng.below(env.len() as u64 * 8) as usize;
                env[bit / 8] ^= 1 << (bit % 8);
            }
            Attack::Splice => blobs[i].envelope = Bytes(self.foreign.clone()),
            Attack::Drop => {
                self.hidden.insert(blobs.remove(i).cursor);
            }
            Attack::Replay => {
                self.hidden.insert(blobs[i].cursor);
                blobs[i].envelope = blobs[i - 1].envelope.clone();
            }
            Attack::Reorder => {
                let j = (i + 1) % blobs.len();
                self.hidden.insert(blobs[i].cursor);
                self.hidden.insert(blobs[j].cursor);
                let (a, b) = (blobs[i].envelope.clone(), blobs[j].envelope.clone());
                blobs[i].envelope = b;
                blobs[j].envelope = a;
            }
            Attack::Rollback | Attack::Fork => {}
        }
        *self.done.entry(attack).or_insert(0) += 1;
    }

    /// Alters one stored blob at rest (bit flip or splice); returns its cursor.
    pub fn corrupt_at_rest(&mut self, rng: &mut CoreRng, store: &mut crate::stores::RelayStore) -> Option<u64> {
        let group = store.groups.values_mut().next()?;
        let cursors: Vec<u64> = group.blobs.keys().copied().filter(|c| !self.served.contains(c)).collect();
        let cursor = *cursors.get(rng.below(cursors.len().max(1) as u64) as usize)?;
        let blob = group.blobs.get_mut(&cursor)?;
        if rng.below(2) == 0 {
            let bit = rng.below(blob.envelope.len() as u64 * 8) as usize;
            blob.envelope.0[bit / 8] ^= 1 << (bit % 8);
            *self.done.entry(Attack::BitFlip).or_insert(0) += 1;
        } else {
            blob.envelope = Bytes(self.foreign.clone());
            *self.done.entry(Attack::Splice).or_insert(0) += 1;
        }
        Some(cursor)
    }

    /// Attacks that a device opening the page must report as tampering.
    pub fn tampering(&self) -> u64 {
        self.done.get(&Attack::BitFlip).copied().unwrap_or(0) + self.done.get(&Attack::Splice).copied().unwrap_or(0)
    }
}
