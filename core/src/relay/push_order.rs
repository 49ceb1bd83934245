//! Keeps one connection's pushes in the order the device sent them. After a push of the
//! connection is refused or fails, pushes the device sent after it are dropped until the device
//! starts sending again from it or from before it (after an error it resends everything
//! unacknowledged, oldest first), or until that push is acknowledged after all. So nothing a
//! device pushed later is stored before something it pushed earlier: each sender's blobs are
//! in sequence order in the log, and readers never wait on a blob stored far behind its
//! successors.

use std::collections::BTreeMap;

/// Unacknowledged push ids remembered per connection; past this the order is forgotten (a
/// device has at most its push window in flight, far fewer).
const MAX_TRACKED: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct PushOrder {
    /// When each unacknowledged push first arrived on this connection (the device's order).
    first_arrival: BTreeMap<[u8; 16], u64>,
    next: u64,
    /// Refused or failed pushes, by first arrival.
    refused: BTreeMap<u64, [u8; 16]>,
}

impl PushOrder {
    /// A push arrived: whether to take it (`false`: drop it, it will come again).
    pub fn arrive(&mut self, push_id: [u8; 16]) -> bool {
        if self.first_arrival.len() >= MAX_TRACKED && !self.first_arrival.contains_key(&push_id) {
            *self = PushOrder { next: self.next, ..PushOrder::default() };
        }
        let next = &mut self.next;
        let arrival = *self.first_arrival.entry(push_id).or_insert_with(|| {
            *next += 1;
            *next
        });
        match self.refused.first_key_value() {
            Some((oldest, _)) if arrival > *oldest => false,
            Some(_) => {
                self.refused.clear();
                true
            }
            None => true,
        }
    }

    /// The push was refused, or its append failed.
    pub fn refused(&mut self, push_id: [u8; 16]) {
        if let Some(arrival) = self.first_arrival.get(&push_id) {
            self.refused.insert(*arrival, push_id);
        }
    }

    /// The push was acknowledged: the device will not send it again.
    pub fn acked(&mut self, push_id: [u8; 16]) {
        if let Some(arrival) = self.first_arrival.remove(&push_id) {
            self.refused.remove(&arrival);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_pushes_wait_for_a_resend_from_the_refused_one_or_before() {
        let mut o = PushOrder::default();
        for id in 1..=4 {
            assert!(o.arrive([id; 16]));
        }
        o.refused([3; 16]);
        o.refused([2; 16]);
        assert!(!o.arrive([4; 16]), "sent after the refused ones");
        assert!(!o.arrive([5; 16]), "new, sent before the device heard");
        assert!(!o.arrive([3; 16]), "3 is resent, but 2 was refused and comes first");
        assert!(o.arrive([1; 16]), "a resend from before the refusals: the order is the device's again");
        for id in 2..=5 {
            assert!(o.arrive([id; 16]));
        }
    }

    #[test]
    fn an_acknowledged_refused_push_holds_nothing_back() {
        let mut o = PushOrder::default();
        assert!(o.arrive([1; 16]));
        assert!(o.arrive([2; 16]));
        o.refused([1; 16]);
        assert!(!o.arrive([2; 16]));
        o.acked([1; 16]);
        assert!(o.arrive([2; 16]));
    }
}
