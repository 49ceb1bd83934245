//! Reconnect delays: exponential with equal jitter from the injected generator.

use crate::CoreRng;
use crate::time::Duration;

/// Exponential backoff: `base · 2^attempt`, capped, half of it random.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base`, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max, attempt: 0 }
    }

    /// The next delay, in `[d/2, d]` where `d = min(max, base · 2^attempt)`.
    pub fn next(&mut self, rng: &mut CoreRng) -> Duration {
        let d = self.base.as_micros().saturating_mul(1u64 << self.attempt.min(30)).min(self.max.as_micros());
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        Duration(half + rng.below(d - half + 1))
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters_within_bounds() {
        let mut rng = CoreRng::from_seed([1; 32]);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut last_cap = 0;
        for i in 0..20u32 {
            let cap = (100_000u64 << i.min(30)).min(5_000_000);
            let d = b.next(&mut rng).as_micros();
            assert!(d >= cap / 2 && d <= cap, "attempt {i}: {d} not in [{}, {cap}]", cap / 2);
            assert!(cap >= last_cap);
            last_cap = cap;
        }
        b.reset();
        assert!(b.next(&mut rng) <= Duration::from_millis(100));
    }
}
