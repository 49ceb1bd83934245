//! The relay's log commitment: a hash chain over every stored blob in cursor order.
//!
//! The relay stores `chain(n) = H(chain(prev), cursor, push id, stored time, envelope)` with each
//! blob and states, with every page, the chain value at the page's lower bound. A device keeps
//! the chain value at its cursor and checks each page against it: a relay that shows a device
//! one history and later another (a fork, or a rollback hidden behind new pushes) is caught at
//! the device's next pull, and every blob in a page is bound to the history it came with.

use crate::wire::StoredBlob;

/// A chain value.
pub type LogChain = [u8; 32];

const GENESIS: &str = "0k-sync 2026 relay log genesis v1";
const LINK: &str = "0k-sync 2026 relay log link v1";

/// The chain value of a group's empty log.
pub fn genesis(group_id: &[u8; 32]) -> LogChain {
    *blake3::Hasher::new_derive_key(GENESIS).update(group_id).finalize().as_bytes()
}

/// The chain value after `blob` (its own `chain` field is not hashed).
pub fn link(prev: &LogChain, blob: &StoredBlob) -> LogChain {
    let mut h = blake3::Hasher::new_derive_key(LINK);
    h.update(prev)
        .update(&blob.cursor.to_le_bytes())
        .update(&blob.push_id)
        .update(&blob.stored_at_ms.to_le_bytes())
        .update(&(blob.envelope.len() as u64).to_le_bytes())
        .update(&blob.envelope);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Bytes;

    fn blob(cursor: u64, envelope: &[u8]) -> StoredBlob {
        StoredBlob { cursor, push_id: [1; 16], stored_at_ms: 5, envelope: Bytes(envelope.to_vec()), chain: [0; 32] }
    }

    #[test]
    fn every_field_and_the_history_change_the_link() {
        let g = genesis(&[1; 32]);
        assert_ne!(g, genesis(&[2; 32]));
        let base = link(&g, &blob(1, b"abc"));
        assert_ne!(base, link(&[9; 32], &blob(1, b"abc")), "history");
        assert_ne!(base, link(&g, &blob(2, b"abc")), "cursor");
        assert_ne!(base, link(&g, &blob(1, b"abd")), "envelope");
        let mut other = blob(1, b"abc");
        other.push_id = [2; 16];
        assert_ne!(base, link(&g, &other), "push id");
        other = blob(1, b"abc");
        other.stored_at_ms = 6;
        assert_ne!(base, link(&g, &other), "time");
        other = blob(1, b"abc");
        other.chain = [7; 32];
        assert_eq!(base, link(&g, &other), "the stated chain itself is not hashed");
    }
}
