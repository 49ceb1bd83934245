use std::collections::BTreeMap;

use crate::keys::NoisePublic;

/// Refuses a replayed IK first message: per access key, each accepted handshake timestamp
/// must be strictly greater than the last. Bounded: when full, the entry with the oldest
/// timestamp is forgotten (a replay of a message older than every remembered one is then
/// caught by the relay's clock window instead).
#[derive(Debug)]
pub struct ReplayGuard {
    last: BTreeMap<NoisePublic, u64>,
    capacity: usize,
    window_ms: u64,
}

impl ReplayGuard {
    /// A guard remembering up to `capacity` keys and refusing timestamps more than
    /// `window_ms` away from the relay's clock.
    pub fn new(capacity: usize, window_ms: u64) -> Self {
        ReplayGuard { last: BTreeMap::new(), capacity: capacity.max(1), window_ms }
    }

    /// Accepts `timestamp_ms` for `key` if it is fresh and newer than the last accepted one.
    pub fn check(&mut self, key: &NoisePublic, timestamp_ms: u64, now_unix_ms: u64) -> bool {
        if timestamp_ms.abs_diff(now_unix_ms) > self.window_ms {
            return false;
        }
        if self.last.get(key).is_some_and(|&last| timestamp_ms <= last) {
            return false;
        }
        if !self.last.contains_key(key) && self.last.len() >= self.capacity {
            let oldest = self.last.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.last.remove(&k);
            }
        }
        self.last.insert(*key, timestamp_ms);
        true
    }

    /// Number of remembered keys.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// No key remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_per_key_within_the_window() {
        let mut g = ReplayGuard::new(2, 60_000);
        let a = NoisePublic([1; 32]);
        let b = NoisePublic([2; 32]);
        assert!(g.check(&a, 1_000_000, 1_000_000));
        assert!(!g.check(&a, 1_000_000, 1_000_000), "same timestamp is a replay");
        assert!(!g.check(&a, 999_999, 1_000_000), "older timestamp is a replay");
        assert!(g.check(&a, 1_000_001, 1_000_000));
        assert!(g.check(&b, 1_000_000, 1_000_000), "keys are independent");
        assert!(!g.check(&a, 1_000_000 + 60_001 + 1, 1_000_000), "too far in the future");
        assert!(!g.check(&b, 1_000_000 - 60_001, 1_000_000), "too far in the past");
    }

    #[test]
    fn bounded_by_capacity() {
        let mut g = ReplayGuard::new(2, u64::MAX);
        for i in 0..10u8 {
            assert!(g.check(&NoisePublic([i; 32]), 100 + u64::from(i), 100));
        }
        assert_eq!(g.len(), 2);
    }
}
