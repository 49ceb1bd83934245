//! A store's check of its own log chain when the relay opens it. A store damaged at rest (a row
//! deleted or altered by hand, by a disk, or by a restore that mixed files) breaks the chain
//! there, and every reader would stop at the break. The check drops each row the chain does not
//! vouch for and links the rows after it again, so the log is whole once more: readers whose
//! view covered the break report a fork and read again, and the pushers of the dropped rows push
//! them again from their sent logs (docs/ARCHITECTURE.md, "The log heals").
//!
//! Feed the rows in cursor order to [`ChainCheck::row`], then call [`ChainCheck::finish`].

use crate::log::{self, LogChain};
use crate::wire::StoredBlob;

/// What a damaged store must change to be a whole log again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainRepair {
    /// Rows the chain does not vouch for (altered, or right after a deleted row): delete them.
    pub dropped: Vec<u64>,
    /// New chain values for the rows kept after the first break, by cursor.
    pub relinked: Vec<(u64, LogChain)>,
    /// The chain value the group's head must state from now on.
    pub head_chain: LogChain,
}

/// Walks a group's rows in cursor order.
#[derive(Debug)]
pub struct ChainCheck {
    /// The chain value the next row must extend, as stored.
    stored: LogChain,
    /// The chain value the next kept row extends once repaired.
    repaired: LogChain,
    repair: ChainRepair,
}

impl ChainCheck {
    /// Starts at the chain value below the oldest row: of the last pruned blob, or the
    /// group's genesis when nothing was pruned.
    pub fn new(group_id: &[u8; 32], pruned_chain: Option<LogChain>) -> Self {
        let start = pruned_chain.unwrap_or_else(|| log::genesis(group_id));
        ChainCheck { stored: start, repaired: start, repair: ChainRepair::default() }
    }

    /// Checks the next row.
    pub fn row(&mut self, blob: &StoredBlob) {
        if log::link(&self.stored, blob) != blob.chain {
            // Altered itself, or the row before it is gone: either way its chain value cannot
            // be vouched for. The row after it extends its stored value in both cases.
            self.repair.dropped.push(blob.cursor);
            self.stored = blob.chain;
            return;
        }
        self.stored = blob.chain;
        if self.repair.dropped.is_empty() {
            self.repaired = blob.chain;
        } else {
            // Its stored value descends from a dropped row.
            self.repaired = log::link(&self.repaired, blob);
            self.repair.relinked.push((blob.cursor, self.repaired));
        }
    }

    /// The next row cannot even be read (a column of the wrong size): it is dropped, and so is
    /// the row after it, whose chain value extends this one's.
    pub fn unreadable(&mut self, cursor: u64) {
        self.repair.dropped.push(cursor);
        self.stored = [0; 32];
    }

    /// The repair, if the log needs one: `head_chain` is what the group states at its head
    /// (`None`: no blob ever stored).
    pub fn finish(mut self, head_chain: Option<LogChain>) -> Option<ChainRepair> {
        let intact = self.repair.dropped.is_empty() && head_chain.is_none_or(|h| h == self.repaired);
        if intact {
            return None;
        }
        self.repair.head_chain = self.repaired;
        Some(self.repair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Bytes;

    const GROUP: [u8; 32] = [3; 32];

    fn log_of(n: u64) -> Vec<StoredBlob> {
        let mut prev = log::genesis(&GROUP);
        (1..=n)
            .map(|cursor| {
                let mut b = StoredBlob {
                    cursor,
                    push_id: [cursor as u8; 16],
                    stored_at_ms: cursor * 10,
                    envelope: Bytes(vec![cursor as u8; 8]),
                    chain: [0; 32],
                };
                b.chain = log::link(&prev, &b);
                prev = b.chain;
                b
            })
            .collect()
    }

    fn check(rows: &[StoredBlob], head_chain: Option<LogChain>) -> Option<ChainRepair> {
        let mut check = ChainCheck::new(&GROUP, None);
        rows.iter().for_each(|r| check.row(r));
        check.finish(head_chain)
    }

    /// Applies a repair and checks that the log is whole: every kept row extends the one below.
    fn repaired(mut rows: Vec<StoredBlob>, repair: &ChainRepair) -> Vec<u64> {
        rows.retain(|r| !repair.dropped.contains(&r.cursor));
        for (cursor, chain) in &repair.relinked {
            rows.iter_mut().find(|r| r.cursor == *cursor).unwrap().chain = *chain;
        }
        let mut prev = log::genesis(&GROUP);
        for r in &rows {
            assert_eq!(log::link(&prev, r), r.chain, "cursor {} extends the log", r.cursor);
            prev = r.chain;
        }
        assert_eq!(prev, repair.head_chain);
        rows.iter().map(|r| r.cursor).collect()
    }

    #[test]
    fn an_intact_log_needs_nothing() {
        let rows = log_of(5);
        assert_eq!(check(&rows, Some(rows[4].chain)), None);
        assert_eq!(check(&[], None), None);
    }

    #[test]
    fn a_row_altered_at_rest_is_dropped_and_the_rows_after_it_are_linked_again() {
        let mut rows = log_of(6);
        let head = rows[5].chain;
        rows[2].envelope.0[0] ^= 1;
        let repair = check(&rows, Some(head)).unwrap();
        assert_eq!(repair.dropped, [3]);
        assert_eq!(repair.relinked.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(repaired(rows, &repair), [1, 2, 4, 5, 6]);
    }

    #[test]
    fn the_row_after_a_deleted_one_cannot_be_vouched_for() {
        let mut rows = log_of(6);
        let head = rows[5].chain;
        rows.remove(2);
        let repair = check(&rows, Some(head)).unwrap();
        assert_eq!(repair.dropped, [4], "cursor 4's chain value covers the deleted cursor 3");
        assert_eq!(repaired(rows, &repair), [1, 2, 5, 6]);
    }

    #[test]
    fn deleted_newest_rows_move_the_head_chain_to_the_newest_kept_row() {
        let mut rows = log_of(4);
        let head = rows[3].chain;
        rows.truncate(2);
        let repair = check(&rows, Some(head)).unwrap();
        assert!(repair.dropped.is_empty() && repair.relinked.is_empty());
        assert_eq!(repair.head_chain, rows[1].chain);
    }

    #[test]
    fn a_damaged_chain_value_costs_its_row_and_the_next() {
        let mut rows = log_of(5);
        let head = rows[4].chain;
        rows[1].chain[7] ^= 0x10;
        let repair = check(&rows, Some(head)).unwrap();
        assert_eq!(repair.dropped, [2, 3]);
        assert_eq!(repaired(rows, &repair), [1, 4, 5]);
    }

    #[test]
    fn a_pruned_log_starts_from_the_last_pruned_value() {
        let rows = log_of(5);
        let mut check = ChainCheck::new(&GROUP, Some(rows[1].chain));
        rows[2..].iter().for_each(|r| check.row(r));
        assert_eq!(check.finish(Some(rows[4].chain)), None);
    }
}
