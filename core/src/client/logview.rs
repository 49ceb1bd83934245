//! What a device knows of the relay's log commitment ([`crate::log`]): the chain value at its
//! durable cursor, at the position it fetches from, and at each verified blob in between.

use std::collections::BTreeMap;

use crate::log::{self, LogChain};
use crate::wire::StoredBlob;

/// The chain values this device can vouch for.
#[derive(Debug, Default)]
pub(super) struct LogView {
    /// At the durable cursor (`None`: accept the relay's next statement, after a reported
    /// rollback or truncation, or before the first page).
    durable: Option<LogChain>,
    /// At the fetch position.
    fetch: Option<LogChain>,
    /// Verified blobs above the durable cursor.
    verified: BTreeMap<u64, LogChain>,
}

/// How a page relates to what this device has seen.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PageCheck {
    /// The page extends this device's view of the log.
    Extends,
    /// The relay states another history at the page's start.
    Forked {
        /// This device's chain value there.
        known: LogChain,
    },
}

impl LogView {
    pub fn new(durable: Option<LogChain>) -> Self {
        LogView { durable, fetch: durable, verified: BTreeMap::new() }
    }

    /// The chain value at `cursor` (the value after the highest verified blob at or below it).
    pub fn chain_at(&self, cursor: u64) -> Option<LogChain> {
        self.verified.range(..=cursor).next_back().map(|(_, c)| *c).or(self.durable)
    }

    /// Whether a page whose chain value at its start is `prev_chain` extends this view.
    pub fn check_page(&self, prev_chain: &LogChain) -> PageCheck {
        match self.fetch {
            Some(known) if known != *prev_chain => PageCheck::Forked { known },
            _ => PageCheck::Extends,
        }
    }

    /// Starts verifying a page whose chain value at `after` is `prev_chain` (that value holds
    /// up to the page's first blob: a durable cursor that stops short of it records it).
    pub fn start_page(&mut self, after: u64, prev_chain: LogChain) {
        self.fetch = Some(prev_chain);
        self.verified.insert(after, prev_chain);
    }

    /// Checks that `blob` extends the fetch position; records it if so.
    pub fn verify(&mut self, blob: &StoredBlob) -> bool {
        let Some(prev) = self.fetch else { return false };
        let chain = log::link(&prev, blob);
        if chain != blob.chain {
            return false;
        }
        self.fetch = Some(chain);
        self.verified.insert(blob.cursor, chain);
        true
    }

    /// Moves past `blob` on the relay's word (it failed [`Self::verify`] and was reported).
    pub fn skip(&mut self, blob: &StoredBlob) {
        self.fetch = Some(blob.chain);
        self.verified.insert(blob.cursor, blob.chain);
    }

    /// The fetch position moves back to `cursor` (at or above the durable cursor).
    pub fn fetch_from(&mut self, cursor: u64) {
        self.fetch = self.chain_at(cursor);
        drop(self.verified.split_off(&cursor.saturating_add(1)));
    }

    /// Everything up to `cursor`, whose chain value is `chain`, is durable.
    pub fn commit(&mut self, cursor: u64, chain: Option<LogChain>) {
        self.durable = chain;
        self.verified = self.verified.split_off(&cursor.saturating_add(1));
    }

    /// Starts over at `cursor` with chain value `chain` (`None`: accept the relay's next
    /// statement).
    pub fn restart(&mut self, chain: Option<LogChain>) {
        *self = LogView::new(chain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Bytes;

    fn chained(prev: &LogChain, cursor: u64) -> StoredBlob {
        let mut b = StoredBlob {
            cursor,
            push_id: [cursor as u8; 16],
            stored_at_ms: 0,
            envelope: Bytes(vec![1]),
            chain: [0; 32],
        };
        b.chain = log::link(prev, &b);
        b
    }

    #[test]
    fn verifies_links_and_remembers_values_for_the_durable_cursor() {
        let g = log::genesis(&[1; 32]);
        let mut view = LogView::new(Some(g));
        assert_eq!(view.check_page(&g), PageCheck::Extends);
        assert_eq!(view.check_page(&[5; 32]), PageCheck::Forked { known: g });
        let b1 = chained(&g, 1);
        let b3 = chained(&b1.chain, 3);
        let mut bad = chained(&b1.chain, 4);
        bad.envelope.0[0] ^= 1;
        view.start_page(0, g);
        assert!(view.verify(&b1));
        assert!(view.verify(&b3));
        assert!(!view.verify(&bad), "an altered envelope breaks the link");
        assert_eq!(view.chain_at(2), Some(b1.chain), "a hole carries the value below it");
        view.commit(2, view.chain_at(2));
        assert_eq!(view.chain_at(2), Some(b1.chain));
        view.fetch_from(2);
        assert_eq!(view.check_page(&b1.chain), PageCheck::Extends);
        view.restart(None);
        assert_eq!(view.check_page(&[5; 32]), PageCheck::Extends, "nothing known: the relay's word is taken");
        view.start_page(0, g);
        assert!(view.verify(&chained(&g, 3)));
        assert_eq!(view.chain_at(2), Some(g), "the page's start value holds below its first blob");
        // A relay may name any cursor: the largest one is no overflow.
        view.fetch_from(u64::MAX);
        view.commit(u64::MAX, Some(g));
        assert_eq!(view.chain_at(u64::MAX), Some(g));
    }
}
