//! Relay limits: configuration and deterministic token buckets.

use crate::envelope::MAX_ENVELOPE;
use crate::time::{Duration, Instant};

/// Every limit the relay enforces. Each is answered with an Error frame, never a silent drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// A connection that has not completed its handshake by then is closed.
    pub handshake_timeout: Duration,
    /// Largest first handshake message accepted before authentication, in bytes.
    pub max_preauth_record: usize,
    /// Largest envelope accepted, in bytes.
    pub max_envelope: usize,
    /// Most blobs in one pull page.
    pub max_page_blobs: u32,
    /// Most envelope bytes in one pull page (at least one blob is always sent).
    pub max_page_bytes: usize,
    /// Most stored bytes per group.
    pub group_quota_bytes: u64,
    /// Most stored blobs per group.
    pub group_quota_blobs: u64,
    /// Pushes per access key: bucket size.
    pub push_burst: u32,
    /// Pushes per access key: refill per second.
    pub push_per_sec: u32,
    /// Slot lookups (SlotOpen) per connection: bucket size.
    pub slot_open_burst: u32,
    /// Slot lookups per connection: refill per minute.
    pub slot_open_per_min: u32,
    /// Longest life of a pairing slot.
    pub max_slot_ttl: Duration,
    /// Joiner attempts per slot before it is closed.
    pub max_slot_attempts: u8,
    /// Accepted clock difference of an IK handshake timestamp, in ms.
    pub handshake_clock_window_ms: u64,
    /// Keys remembered by the handshake replay guard.
    pub replay_guard_keys: usize,
    /// Blobs older than this are deleted (`None`: keep until all devices acked).
    pub retention_ttl: Option<Duration>,
    /// Delete blobs once every registered device has acknowledged them.
    pub retention_all_acked: bool,
    /// Group creation needs this token, if set.
    pub admission_token: Option<Vec<u8>>,
    /// Most connections at once, in any phase: one more is closed as it arrives.
    pub max_connections: usize,
    /// Invite lookups across all connections: burst, then per second. Connections are free,
    /// so a per-connection limit alone does not bound a scan of the slot space.
    pub slot_open_global_burst: u32,
    /// See [`Self::slot_open_global_burst`].
    pub slot_open_global_per_sec: u32,
    /// Invite lookups from one source address (all its connections): burst, then per minute.
    pub slot_open_source_burst: u32,
    /// See [`Self::slot_open_source_burst`].
    pub slot_open_source_per_min: u32,
    /// Frames per authenticated connection, of every kind: burst, then per second, and never
    /// less than twice the push limits. A device stays below (its pushes are limited to
    /// `push_per_sec`, it pulls one page at a time); a connection over it is closed.
    pub frame_burst: u32,
    /// See [`Self::frame_burst`].
    pub frame_per_sec: u32,
    /// Most groups the relay holds; creating one more is refused.
    pub max_groups: u64,
    /// Most bytes stored across all groups; a push over it is refused with `QuotaExceeded`.
    pub max_total_bytes: u64,
    /// Group creations across all sources: burst, then per minute.
    pub group_create_burst: u32,
    /// See [`Self::group_create_burst`].
    pub group_create_per_min: u32,
    /// Group creations from one source address: burst, then per minute.
    pub group_create_source_burst: u32,
    /// See [`Self::group_create_source_burst`].
    pub group_create_source_per_min: u32,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            handshake_timeout: Duration::from_secs(10),
            max_preauth_record: 1024,
            max_envelope: MAX_ENVELOPE,
            max_page_blobs: 256,
            max_page_bytes: 1536 * 1024,
            group_quota_bytes: 1 << 30,
            group_quota_blobs: 1_000_000,
            push_burst: 1_000,
            push_per_sec: 500,
            slot_open_burst: 5,
            slot_open_per_min: 5,
            max_slot_ttl: Duration::from_secs(600),
            max_slot_attempts: 3,
            handshake_clock_window_ms: 10 * 60 * 1000,
            replay_guard_keys: 100_000,
            retention_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            retention_all_acked: false,
            admission_token: None,
            max_connections: 10_000,
            slot_open_global_burst: 200,
            slot_open_global_per_sec: 50,
            slot_open_source_burst: 20,
            slot_open_source_per_min: 20,
            frame_burst: 4_000,
            frame_per_sec: 2_000,
            max_groups: 100_000,
            max_total_bytes: u64::MAX,
            group_create_burst: 200,
            group_create_per_min: 120,
            group_create_source_burst: 20,
            group_create_source_per_min: 10,
        }
    }
}

/// A token bucket on the injected clock: `burst` tokens, refilled at `per` intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    tokens: u32,
    burst: u32,
    interval: Duration,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens regaining one every `interval`.
    pub fn new(burst: u32, interval: Duration, now: Instant) -> Self {
        TokenBucket { tokens: burst, burst, interval, last: now }
    }

    /// A bucket of `burst` tokens regaining `rate` per `period`.
    pub fn per(burst: u32, rate: u32, period: Duration, now: Instant) -> Self {
        let interval = Duration(period.as_micros() / u64::from(rate.max(1)));
        Self::new(burst, interval, now)
    }

    /// Whether the bucket has refilled completely by `now`.
    pub fn is_full(&self, now: Instant) -> bool {
        let step = self.interval.as_micros().max(1);
        let refill = now.saturating_since(self.last).as_micros() / step;
        u64::from(self.tokens).saturating_add(refill) >= u64::from(self.burst)
    }

    /// Takes a token if one is left; otherwise returns how long until the next one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let step = self.interval.as_micros().max(1);
        let elapsed = now.saturating_since(self.last).as_micros();
        let refill = elapsed / step;
        if refill > 0 {
            self.tokens = self.tokens.saturating_add(u32::try_from(refill).unwrap_or(u32::MAX)).min(self.burst);
            self.last = Instant(self.last.0 + refill * step);
        }
        if self.tokens == 0 {
            return Err(Duration(step - (elapsed % step)));
        }
        self.tokens -= 1;
        Ok(())
    }
}

/// Token buckets per source address, at most `MAX_SOURCES` of them: when full, the buckets
/// that have refilled (which limit nothing) are dropped first, then all of them, so a flood from
/// many addresses costs bounded memory and the global buckets still hold.
#[derive(Clone, Debug)]
pub(crate) struct SourceBuckets {
    buckets: std::collections::BTreeMap<Source, TokenBucket>,
    /// The full bucket each new source starts from (its clock is set when it is copied).
    fresh: TokenBucket,
}

/// Most source addresses tracked by one [`SourceBuckets`].
const MAX_SOURCES: usize = 10_000;

impl SourceBuckets {
    pub fn per(burst: u32, rate: u32, period: Duration) -> Self {
        SourceBuckets { buckets: Default::default(), fresh: TokenBucket::per(burst, rate, period, Instant(0)) }
    }

    /// Takes a token from `source`'s bucket; the unknown source is not limited here.
    pub fn take(&mut self, source: Source, now: Instant) -> Result<(), Duration> {
        if source == Source::UNKNOWN {
            return Ok(());
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= MAX_SOURCES {
                self.buckets.clear();
            }
        }
        let fresh = &self.fresh;
        self.buckets.entry(source).or_insert_with(|| TokenBucket { last: now, ..fresh.clone() }).take(now)
    }
}

/// Where a connection comes from, as its driver tells: an IPv4 address (IPv4-mapped), an IPv6
/// address's /64 prefix, or [`Source::UNKNOWN`]. Per-source budgets key on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source(pub [u8; 16]);

impl Source {
    /// A connection whose driver cannot tell (the simulator, a proxy without forwarding).
    pub const UNKNOWN: Source = Source([0; 16]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut b = TokenBucket::new(3, Duration::from_secs(1), Instant(0));
        for _ in 0..3 {
            assert!(b.take(Instant(0)).is_ok());
        }
        assert_eq!(b.take(Instant(0)), Err(Duration::from_secs(1)));
        assert_eq!(b.take(Instant(400_000)), Err(Duration(600_000)));
        assert!(b.take(Instant(1_000_000)).is_ok());
        assert!(b.take(Instant(1_000_000)).is_err());
        assert!(b.take(Instant(10_000_000)).is_ok(), "refilled, capped at burst");
        assert!(b.take(Instant(10_000_000)).is_ok());
        assert!(b.take(Instant(10_000_000)).is_ok());
        assert!(b.take(Instant(10_000_000)).is_err());
    }
}
