//! The real clock, as the core wants it: monotonic microseconds since start plus Unix time.

use zerok_core::{Instant, Now};

/// A monotonic origin.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock { start: std::time::Instant::now() }
    }

    /// The current time.
    pub fn now(&self) -> Now {
        let mono = Instant(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX));
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Now { mono, unix_ms }
    }

    /// How long from now until `deadline` (zero if passed).
    pub fn until(&self, deadline: Instant) -> std::time::Duration {
        std::time::Duration::from_micros(deadline.0.saturating_sub(self.now().mono.0))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 bytes from the operating system, for seeding the core.
pub fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(std::io::Error::other)?;
    Ok(seed)
}
