use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::keys::NoisePublic;

/// Timestamps remembered per key.
const PER_KEY: usize = 64;

/// Refuses a replayed IK first message. A first message is accepted when its timestamp is
/// within `window_ms` of the relay's clock and is not one of the last 64 accepted for that key.
/// A device's clock may go backwards (a restart, a corrected clock) without locking it out,
/// while a recorded message can only be replayed after its timestamp left the window — and then
/// it is refused for being stale. Bounded: when full, the key seen least recently is forgotten.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: BTreeMap<NoisePublic, VecDeque<u64>>,
    /// Each remembered key by its newest timestamp: the stalest is the first (no scan of every
    /// key when full: that cost grew with the capacity on every new key, issue 14).
    by_newest: BTreeSet<(u64, NoisePublic)>,
    capacity: usize,
    window_ms: u64,
}

impl ReplayGuard {
    /// A guard remembering up to `capacity` keys and refusing timestamps more than
    /// `window_ms` away from the relay's clock.
    pub fn new(capacity: usize, window_ms: u64) -> Self {
        ReplayGuard { seen: BTreeMap::new(), by_newest: BTreeSet::new(), capacity: capacity.max(1), window_ms }
    }

    /// Accepts `timestamp_ms` for `key` if it is fresh and not seen before.
    pub fn check(&mut self, key: &NoisePublic, timestamp_ms: u64, now_unix_ms: u64) -> bool {
        if timestamp_ms.abs_diff(now_unix_ms) > self.window_ms {
            return false;
        }
        if self.seen.get(key).is_some_and(|recent| recent.contains(&timestamp_ms)) {
            return false;
        }
        if !self.seen.contains_key(key)
            && self.seen.len() >= self.capacity
            && let Some((_, stalest)) = self.by_newest.pop_first()
        {
            self.seen.remove(&stalest);
        }
        let recent = self.seen.entry(*key).or_default();
        let newest_before = recent.iter().max().copied();
        recent.push_back(timestamp_ms);
        if recent.len() > PER_KEY {
            recent.pop_front();
        }
        let newest = recent.iter().max().copied().unwrap_or(timestamp_ms);
        if let Some(before) = newest_before {
            self.by_newest.remove(&(before, *key));
        }
        self.by_newest.insert((newest, *key));
        true
    }

    /// Number of remembered keys.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// No key remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_replays_and_stale_timestamps_are_refused() {
        let mut g = ReplayGuard::new(2, 60_000);
        let a = NoisePublic([1; 32]);
        let b = NoisePublic([2; 32]);
        assert!(g.check(&a, 1_000_000, 1_000_000));
        assert!(!g.check(&a, 1_000_000, 1_000_000), "the same message again is a replay");
        assert!(g.check(&a, 999_999, 1_000_000), "a clock that went back is not locked out");
        assert!(!g.check(&a, 999_999, 1_000_000));
        assert!(g.check(&b, 1_000_000, 1_000_000), "keys are independent");
        assert!(!g.check(&a, 1_000_000 + 60_001, 1_000_000), "too far in the future");
        assert!(!g.check(&b, 1_000_000 - 60_001, 1_000_000), "too far in the past: a replay of an old message");
    }

    #[test]
    fn bounded_by_capacity_and_per_key_history() {
        let mut g = ReplayGuard::new(2, u64::MAX);
        for i in 0..10u8 {
            assert!(g.check(&NoisePublic([i; 32]), 100 + u64::from(i), 100));
        }
        assert_eq!(g.len(), 2);
        let k = NoisePublic([99; 32]);
        for t in 0..200 {
            assert!(g.check(&k, t, 100));
        }
        assert_eq!(g.seen.get(&k).map(VecDeque::len), Some(PER_KEY));
        assert_eq!(g.by_newest.len(), g.seen.len(), "one entry per remembered key");
    }

    #[test]
    fn when_full_the_key_seen_least_recently_is_forgotten() {
        let mut g = ReplayGuard::new(3, u64::MAX);
        let key = |i: u8| NoisePublic([i; 32]);
        assert!(g.check(&key(1), 10, 0));
        assert!(g.check(&key(2), 20, 0));
        assert!(g.check(&key(3), 30, 0));
        assert!(g.check(&key(1), 40, 0), "key 1 seen again: now the newest");
        assert!(g.check(&key(4), 50, 0));
        assert!(!g.seen.contains_key(&key(2)), "key 2 was the stalest");
        assert!(!g.check(&key(1), 10, 0), "key 1's history is kept");
        assert_eq!(g.by_newest.len(), 3);
    }
}
