//! The receive rules: apply each sender's blobs strictly in sequence order, drop exact
//! duplicates silently, report a different blob for a seen sequence number or a broken hash
//! chain as equivocation, and hold early blobs in a bounded gap buffer. After history was
//! pruned before this device read it, a sender's chain starts at its first blob from the trust
//! floor on (a trust point): the blobs before it are gone for every device that did not have them.

use std::collections::{BTreeMap, VecDeque};

use super::state::{GivenUp, ReceivedBlob, SenderView};
use crate::envelope::OpenedBlob;
use crate::keys::DeviceId;

/// Chain hashes remembered per sender for equivocation checks on old sequence numbers.
const RECENT_HASHES: usize = 64;

/// Given-up stretches kept open to late arrivals per sender (the oldest is closed first).
pub(crate) const GIVEN_UP_STRETCHES: usize = 8;

/// A blob that decrypted and verified, with where the relay stored it.
#[derive(Clone, Debug)]
pub(crate) struct Incoming {
    pub cursor: u64,
    pub push_id: [u8; 16],
    pub stored_at_ms: u64,
    pub blob: OpenedBlob,
}

/// What happened to one incoming blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Applied, possibly with buffered successors: deliver these, in order.
    Applied(Vec<ReceivedBlob>),
    /// Already applied or already buffered: dropped silently.
    Duplicate,
    /// A different blob for a sequence number already seen, or a broken chain.
    Equivocation { seq: u64, known: [u8; 32], got: [u8; 32] },
    /// Early: held until the blobs before it arrive.
    Buffered,
    /// Early, and the gap buffer is full: dropped, to be fetched again.
    Overflow,
}

#[derive(Clone, Debug, Default)]
struct Chain {
    view: SenderView,
    recent: VecDeque<(u64, [u8; 32])>,
}

impl Chain {
    fn known_hash(&self, seq: u64) -> Option<[u8; 32]> {
        if seq == self.view.last_seq {
            return Some(self.view.last_hash);
        }
        self.recent.iter().find(|(s, _)| *s == seq).map(|(_, h)| *h)
    }

    fn apply(&mut self, seq: u64, hash: [u8; 32], cursor: u64) {
        self.view.last_seq = seq;
        self.view.last_hash = hash;
        self.view.last_cursor = cursor;
        self.recent.push_back((seq, hash));
        if self.recent.len() > RECENT_HASHES {
            self.recent.pop_front();
        }
    }
}

/// Per-sender chains (committed, i.e. durable) plus the changes of the page being processed.
#[derive(Debug)]
pub(crate) struct Receiver {
    committed: BTreeMap<DeviceId, Chain>,
    staged: BTreeMap<DeviceId, Chain>,
    gap: BTreeMap<(DeviceId, u64), Incoming>,
    gap_bytes: usize,
    /// Per sender, the lowest early blob dropped because the gap buffer was full since it was
    /// last cleared: (seq, its prev_hash). The relay has it; it is read again later.
    dropped: BTreeMap<DeviceId, (u64, [u8; 32])>,
    max_gap_blobs: usize,
    max_gap_bytes: usize,
    /// See [`super::ClientState::trust_floor`].
    trust_floor: u64,
    /// Senders whose chain started at a trust point in the current page: (sender, seq, cursor).
    trust_points: Vec<(DeviceId, u64, u64)>,
    #[cfg(feature = "planted-bugs")]
    pub accept_gaps: bool,
    #[cfg(feature = "planted-bugs")]
    pub no_trust_points: bool,
}

impl Receiver {
    pub fn new(
        senders: &BTreeMap<DeviceId, SenderView>,
        trust_floor: u64,
        max_gap_blobs: usize,
        max_gap_bytes: usize,
    ) -> Self {
        let committed = senders
            .iter()
            .map(|(d, v)| (*d, Chain { view: v.clone(), recent: VecDeque::from([(v.last_seq, v.last_hash)]) }))
            .collect();
        Receiver {
            committed,
            staged: BTreeMap::new(),
            gap: BTreeMap::new(),
            gap_bytes: 0,
            dropped: BTreeMap::new(),
            max_gap_blobs,
            max_gap_bytes,
            trust_floor,
            trust_points: Vec::new(),
            #[cfg(feature = "planted-bugs")]
            accept_gaps: false,
            #[cfg(feature = "planted-bugs")]
            no_trust_points: false,
        }
    }

    /// History below `floor` was pruned before this device read it (see
    /// [`super::ClientState::trust_floor`]).
    pub fn set_trust_floor(&mut self, floor: u64) {
        self.trust_floor = self.trust_floor.max(floor);
    }

    /// See [`super::ClientState::trust_floor`].
    pub fn trust_floor(&self) -> u64 {
        self.trust_floor
    }

    /// The trust points taken since the last call: (sender, first seq, its cursor).
    pub fn take_trust_points(&mut self) -> Vec<(DeviceId, u64, u64)> {
        std::mem::take(&mut self.trust_points)
    }

    fn chain(&self, sender: &DeviceId) -> Chain {
        self.staged.get(sender).or_else(|| self.committed.get(sender)).cloned().unwrap_or_default()
    }

    /// Applies the rules to one blob (in cursor order).
    pub fn receive(&mut self, incoming: Incoming) -> Verdict {
        let sender = incoming.blob.sender;
        let seq = incoming.blob.seq;
        let mut chain = self.chain(&sender);
        if seq <= chain.view.last_seq {
            if let Some(applied) = self.late(sender, &mut chain, &incoming) {
                return applied;
            }
            return match chain.known_hash(seq) {
                Some(known) if known != incoming.blob.hash => {
                    Verdict::Equivocation { seq, known, got: incoming.blob.hash }
                }
                _ => Verdict::Duplicate,
            };
        }
        let ahead = seq > chain.view.last_seq.saturating_add(1);
        // The sender's earlier blobs lie below the trust floor (pruned): its chain starts here.
        let starts_late = ahead && chain.view.last_cursor < self.trust_floor && incoming.cursor >= self.trust_floor;
        #[cfg(feature = "planted-bugs")]
        let starts_late = starts_late && !self.no_trust_points;
        #[cfg(feature = "planted-bugs")]
        let early = ahead && !self.accept_gaps && !starts_late;
        #[cfg(not(feature = "planted-bugs"))]
        let early = ahead && !starts_late;
        if starts_late {
            self.trust_points.push((sender, seq, incoming.cursor));
        } else if early {
            return match self.gap.get(&(sender, seq)) {
                Some(held) if held.blob.hash == incoming.blob.hash => Verdict::Duplicate,
                Some(held) => Verdict::Equivocation { seq, known: held.blob.hash, got: incoming.blob.hash },
                None if self.gap.len() >= self.max_gap_blobs
                    || self.gap_bytes + incoming.blob.payload.len() > self.max_gap_bytes =>
                {
                    let lowest = self.dropped.entry(sender).or_insert((seq, incoming.blob.prev_hash));
                    if seq < lowest.0 {
                        *lowest = (seq, incoming.blob.prev_hash);
                    }
                    Verdict::Overflow
                }
                None => {
                    self.gap_bytes += incoming.blob.payload.len();
                    self.gap.insert((sender, seq), incoming);
                    Verdict::Buffered
                }
            };
        }
        if incoming.blob.prev_hash != chain.view.last_hash && seq == chain.view.last_seq.saturating_add(1) {
            return Verdict::Equivocation { seq, known: chain.view.last_hash, got: incoming.blob.prev_hash };
        }
        let mut applied = vec![deliverable(&incoming)];
        chain.apply(seq, incoming.blob.hash, incoming.cursor);
        self.drain(sender, chain, &mut applied);
        Verdict::Applied(applied)
    }

    /// Applies the buffered blobs that follow `chain` in order, and stages it.
    fn drain(&mut self, sender: DeviceId, mut chain: Chain, applied: &mut Vec<ReceivedBlob>) {
        while let Some(next) = self.gap.remove(&(sender, chain.view.last_seq.saturating_add(1))) {
            self.gap_bytes -= next.blob.payload.len();
            if next.blob.prev_hash != chain.view.last_hash {
                break;
            }
            applied.push(deliverable(&next));
            chain.apply(next.blob.seq, next.blob.hash, next.cursor);
        }
        self.staged.insert(sender, chain);
    }

    /// A blob below the sender's chain that this device has no hash for: applied if it is the
    /// next of a stretch given up on (it links to the blob before it), else a duplicate (a
    /// device remembers only its last hashes).
    fn late(&mut self, sender: DeviceId, chain: &mut Chain, incoming: &Incoming) -> Option<Verdict> {
        let blob = &incoming.blob;
        let g = chain.view.given_up.iter_mut().find(|g| g.next_seq == blob.seq && g.prev_hash == blob.prev_hash)?;
        g.next_seq = g.next_seq.saturating_add(1);
        g.prev_hash = blob.hash;
        chain.view.given_up.retain(|g| g.next_seq <= g.to_seq);
        self.staged.insert(sender, chain.clone());
        Some(Verdict::Applied(vec![deliverable(incoming)]))
    }

    /// Gives up waiting for the blobs missing before each sender's buffered ones: its chain
    /// starts again at its lowest buffered blob, and the stretch given up stays open to late
    /// arrivals (at most [`GIVEN_UP_STRETCHES`] per sender). Returns the blobs that apply now,
    /// and for each sender the sequence numbers given up (first, last).
    pub fn give_up(&mut self) -> (Vec<ReceivedBlob>, Vec<(DeviceId, u64, u64)>) {
        let (mut applied, mut lost) = (Vec::new(), Vec::new());
        for (sender, missing_seq) in self.missing() {
            // The lowest blob seen after the gap: only what lies before it is missing.
            let Some(first) = self.first_seen(&sender) else { continue };
            let dropped = self.dropped.get(&sender).copied();
            lost.push((sender, missing_seq, first - 1));
            let mut chain = self.chain(&sender);
            let stretch = GivenUp { next_seq: missing_seq, to_seq: first - 1, prev_hash: chain.view.last_hash };
            chain.view.given_up.push(stretch);
            let excess = chain.view.given_up.len().saturating_sub(GIVEN_UP_STRETCHES);
            chain.view.given_up.drain(..excess);
            match dropped {
                Some((seq, prev_hash)) if seq == first => {
                    // Not held: the chain goes on just before it, and it is read again.
                    chain.view.last_seq = first - 1;
                    chain.view.last_hash = prev_hash;
                    self.staged.insert(sender, chain);
                }
                _ => {
                    let Some(start) = self.gap.remove(&(sender, first)) else { continue };
                    self.gap_bytes -= start.blob.payload.len();
                    applied.push(deliverable(&start));
                    chain.apply(first, start.blob.hash, start.cursor);
                    self.drain(sender, chain, &mut applied);
                }
            }
        }
        (applied, lost)
    }

    /// The lowest cursor still held in the gap buffer: the durable cursor must stay below it.
    pub fn lowest_buffered_cursor(&self) -> Option<u64> {
        self.gap.values().map(|i| i.cursor).min()
    }

    /// Blobs held in the gap buffer.
    pub fn buffered(&self) -> usize {
        self.gap.len()
    }

    /// Senders whose chains changed in the current page, with their new views.
    pub fn staged_views(&self) -> Vec<(DeviceId, SenderView)> {
        self.staged.iter().map(|(d, c)| (*d, c.view.clone())).collect()
    }

    /// The page is durable: its changes become the committed state.
    pub fn commit(&mut self) {
        let staged = std::mem::take(&mut self.staged);
        self.committed.extend(staged);
    }

    /// The page could not be stored: forget its changes and the gap buffer (both are
    /// fetched again from the durable cursor).
    pub fn rollback(&mut self) {
        self.staged.clear();
        self.trust_points.clear();
        self.clear_gap();
    }

    /// Drops buffered blobs, and forgets what the full buffer dropped (all are fetched again).
    pub fn clear_gap(&mut self) {
        self.gap.clear();
        self.gap_bytes = 0;
        self.dropped.clear();
    }

    /// The first missing sequence number of each sender with blobs buffered, or dropped by the
    /// full buffer, after a gap.
    pub fn missing(&self) -> Vec<(DeviceId, u64)> {
        let senders: std::collections::BTreeSet<DeviceId> =
            self.gap.keys().map(|(d, _)| *d).chain(self.dropped.keys().copied()).collect();
        senders
            .into_iter()
            .map(|d| (d, self.chain(&d).view.last_seq.saturating_add(1)))
            // A dropped blob its sender's chain has reached since is not behind a gap: it is
            // only to be read again.
            .filter(|(d, next)| self.first_seen(d).is_some_and(|first| first > *next))
            .collect()
    }

    /// The lowest sequence number of `sender` buffered or dropped.
    fn first_seen(&self, sender: &DeviceId) -> Option<u64> {
        let buffered = self.gap.range((*sender, 0)..=(*sender, u64::MAX)).next().map(|((_, seq), _)| *seq);
        let dropped = self.dropped.get(sender).map(|(seq, _)| *seq);
        buffered.into_iter().chain(dropped).min()
    }
}

fn deliverable(i: &Incoming) -> ReceivedBlob {
    ReceivedBlob {
        cursor: i.cursor,
        push_id: i.push_id,
        sender: i.blob.sender,
        seq: i.blob.seq,
        payload: i.blob.payload.clone(),
        stored_at_ms: i.stored_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::BlobKind;

    fn blob(sender: u8, seq: u64, hash: u8, prev: u8) -> Incoming {
        Incoming {
            cursor: seq * 10 + u64::from(sender),
            push_id: [hash; 16],
            stored_at_ms: 0,
            blob: OpenedBlob {
                sender: DeviceId([sender; 32]),
                seq,
                prev_hash: if prev == 0 { [0; 32] } else { [prev; 32] },
                kind: BlobKind::Data,
                payload: vec![hash],
                hash: [hash; 32],
            },
        }
    }

    fn seqs(v: &Verdict) -> Vec<u64> {
        match v {
            Verdict::Applied(b) => b.iter().map(|b| b.seq).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn in_order_duplicates_and_gaps() {
        let mut r = Receiver::new(&BTreeMap::new(), 0, 10, 1000);
        assert_eq!(seqs(&r.receive(blob(1, 1, 11, 0))), vec![1]);
        assert_eq!(r.receive(blob(1, 1, 11, 0)), Verdict::Duplicate);
        assert_eq!(r.receive(blob(1, 3, 13, 12)), Verdict::Buffered);
        assert_eq!(r.receive(blob(1, 3, 13, 12)), Verdict::Duplicate, "same early blob twice");
        assert_eq!(r.lowest_buffered_cursor(), Some(31));
        assert_eq!(r.missing(), vec![(DeviceId([1; 32]), 2)]);
        assert_eq!(seqs(&r.receive(blob(1, 2, 12, 11))), vec![2, 3], "the gap drains in order");
        assert_eq!(r.buffered(), 0);
        assert_eq!(seqs(&r.receive(blob(2, 1, 21, 0))), vec![1], "senders are independent");
    }

    #[test]
    fn equivocation_is_reported_for_forks_and_broken_chains() {
        let mut r = Receiver::new(&BTreeMap::new(), 0, 10, 1000);
        r.receive(blob(1, 1, 11, 0));
        r.receive(blob(1, 2, 12, 11));
        assert!(
            matches!(r.receive(blob(1, 1, 99, 0)), Verdict::Equivocation { seq: 1, .. }),
            "other blob for a seen seq"
        );
        assert!(matches!(r.receive(blob(1, 3, 13, 77)), Verdict::Equivocation { seq: 3, .. }), "broken chain");
        r.receive(blob(1, 5, 15, 14));
        assert!(
            matches!(r.receive(blob(1, 5, 55, 14)), Verdict::Equivocation { seq: 5, .. }),
            "fork in the gap buffer"
        );
    }

    #[test]
    fn after_pruning_each_sender_starts_at_its_first_blob_from_the_trust_floor() {
        let known = BTreeMap::from([(
            DeviceId([1; 32]),
            SenderView { last_seq: 1, last_hash: [11; 32], last_cursor: 11, given_up: Vec::new() },
        )]);
        let mut r = Receiver::new(&known, 0, 10, 1000);
        r.set_trust_floor(40);
        // Sender 1's blobs 2 and 3 (cursors 21, 31) were pruned; sender 2 was never seen.
        assert_eq!(seqs(&r.receive(blob(1, 4, 14, 13))), vec![4], "a trust point at cursor 41");
        assert_eq!(seqs(&r.receive(blob(2, 5, 25, 24))), vec![5], "a never-seen sender too");
        assert_eq!(r.take_trust_points(), vec![(DeviceId([1; 32]), 4, 41), (DeviceId([2; 32]), 5, 52)]);
        assert_eq!(r.receive(blob(1, 6, 16, 15)), Verdict::Buffered, "past the trust point gaps are gaps again");
        assert!(matches!(r.receive(blob(2, 6, 26, 99)), Verdict::Equivocation { .. }), "and the chain is checked");
        let mut below = Receiver::new(&BTreeMap::new(), 70, 10, 1000);
        assert_eq!(below.receive(blob(1, 5, 15, 14)), Verdict::Buffered, "a blob below the floor is no trust point");
    }

    #[test]
    fn giving_up_on_a_gap_starts_the_sender_again_at_its_first_buffered_blob() {
        let mut r = Receiver::new(&BTreeMap::new(), 0, 10, 1000);
        assert_eq!(seqs(&r.receive(blob(1, 1, 11, 0))), vec![1]);
        assert_eq!(r.receive(blob(1, 4, 14, 13)), Verdict::Buffered);
        assert_eq!(r.receive(blob(1, 5, 15, 14)), Verdict::Buffered);
        let (applied, lost) = r.give_up();
        assert_eq!(applied.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(lost, vec![(DeviceId([1; 32]), 2, 3)]);
        assert_eq!((r.buffered(), r.missing()), (0, vec![]));
        assert_eq!(seqs(&r.receive(blob(1, 6, 16, 15))), vec![6], "the chain goes on from there");
        assert_eq!(r.receive(blob(1, 3, 13, 12)), Verdict::Duplicate, "late blobs apply in order only");
        assert_eq!(r.receive(blob(1, 2, 99, 77)), Verdict::Duplicate, "and only if they link");
        assert_eq!(seqs(&r.receive(blob(1, 2, 12, 11))), vec![2], "a blob given up that arrives late applies");
        assert_eq!(r.receive(blob(1, 2, 12, 11)), Verdict::Duplicate, "once");
        r.commit();
        let view = r.staged_views();
        assert!(view.is_empty());
        let mut again = Receiver::new(&r.committed.iter().map(|(d, c)| (*d, c.view.clone())).collect(), 0, 10, 1000);
        assert_eq!(seqs(&again.receive(blob(1, 3, 13, 12))), vec![3], "the stretch is saved with the sender");
        assert_eq!(again.receive(blob(1, 3, 13, 12)), Verdict::Duplicate, "and closed once filled");
    }

    #[test]
    fn giving_up_behind_a_dropped_blob_gives_up_only_what_was_never_seen() {
        let mut r = Receiver::new(&BTreeMap::new(), 0, 1, 1000);
        assert_eq!(seqs(&r.receive(blob(1, 1, 11, 0))), vec![1]);
        assert_eq!(r.receive(blob(1, 4, 14, 13)), Verdict::Buffered);
        assert_eq!(r.receive(blob(1, 3, 13, 12)), Verdict::Overflow, "seen, but the buffer is full");
        assert_eq!(r.missing(), vec![(DeviceId([1; 32]), 2)]);
        let (applied, lost) = r.give_up();
        assert!(applied.is_empty(), "blob 3 was not held: it is read again");
        assert_eq!(lost, vec![(DeviceId([1; 32]), 2, 2)], "only blob 2 was never seen");
        assert_eq!(seqs(&r.receive(blob(1, 3, 13, 12))), vec![3, 4], "read again, it applies and drains");
    }

    #[test]
    fn a_sequence_number_at_the_end_of_the_range_is_no_overflow() {
        let last = || Incoming { cursor: 5, ..blob(1, 1, 11, 10) };
        let mut last_seq = last();
        last_seq.blob.seq = u64::MAX;
        let mut r = Receiver::new(&BTreeMap::new(), 0, 10, 1000);
        assert_eq!(r.receive(last_seq.clone()), Verdict::Buffered);
        assert_eq!(r.missing(), vec![(DeviceId([1; 32]), 1)]);
        let (applied, lost) = r.give_up();
        assert_eq!((applied.len(), lost), (1, vec![(DeviceId([1; 32]), 1, u64::MAX - 1)]));
        assert_eq!(r.receive(last_seq), Verdict::Duplicate);
        assert_eq!(r.missing(), vec![]);
    }

    #[test]
    fn the_gap_buffer_is_bounded_and_pages_roll_back() {
        let mut r = Receiver::new(&BTreeMap::new(), 0, 2, 1000);
        assert_eq!(r.receive(blob(1, 3, 13, 12)), Verdict::Buffered);
        assert_eq!(r.receive(blob(1, 4, 14, 13)), Verdict::Buffered);
        assert_eq!(r.receive(blob(1, 5, 15, 14)), Verdict::Overflow);
        r.rollback();
        assert_eq!(r.buffered(), 0);
        r.receive(blob(1, 1, 11, 0));
        r.rollback();
        assert_eq!(seqs(&r.receive(blob(1, 1, 11, 0))), vec![1], "rolled-back pages apply again");
        r.commit();
        assert_eq!(r.receive(blob(1, 1, 11, 0)), Verdict::Duplicate);
    }
}
