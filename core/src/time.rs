//! Injected time: the core never reads a clock.

use core::ops::{Add, Sub};

/// A point on the host's monotonic clock, in microseconds since an origin the host chooses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// A span of time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

/// The time an input happened: the monotonic instant for deadlines and the wall clock (Unix
/// milliseconds) for expiries and timestamps that cross machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers.
    pub mono: Instant,
    /// Wall-clock time in milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `us` microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Duration(us)
    }

    /// A duration of `ms` milliseconds (saturating).
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms.saturating_mul(1_000))
    }

    /// A duration of `s` seconds (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Duration(s.saturating_mul(1_000_000))
    }

    /// Whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }
}

impl Instant {
    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}

impl Now {
    /// A `Now` at the given monotonic microsecond and Unix millisecond.
    pub const fn new(mono_us: u64, unix_ms: u64) -> Self {
        Now { mono: Instant(mono_us), unix_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant(u64::MAX) + Duration(5), Instant(u64::MAX));
        assert_eq!(Instant(3) - Duration(5), Instant(0));
        assert_eq!(Instant(3).saturating_since(Instant(10)), Duration::ZERO);
        assert_eq!(Instant(10).saturating_since(Instant(3)), Duration(7));
        assert_eq!(Duration::from_millis(2).as_micros(), 2_000);
        assert_eq!(Duration::from_secs(3).as_millis(), 3_000);
    }
}
