//! What the relay's host process bounds beside the core: sockets per source address and in
//! all (counted from accept to close, idle and half-open ones included, before a byte of the
//! protocol), the descriptor limit, and storage free space.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use zerok_core::relay::Source;

/// Limits the relay's host process enforces, beside the core's [`zerok_core::relay::RelayLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLimits {
    /// Most sockets (QUIC and TCP together) open at once from one source address (an IPv4
    /// address, or an IPv6 /64). Behind a reverse proxy every browser shares the proxy's.
    pub max_connections_per_source: usize,
    /// Most sockets open at once in all, before any protocol byte is read.
    pub max_sockets: usize,
    /// Writes are refused while the data dir's file system has less free than this (bytes; 0:
    /// only a full disk refuses them).
    pub min_free_bytes: u64,
    /// Browser origins allowed to open `/sync` (exact `Origin` values); empty: any. Requests
    /// without an `Origin` (not from a browser) are not affected.
    pub allowed_origins: Vec<String>,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_connections_per_source: 256,
            max_sockets: 12_000,
            min_free_bytes: 64 << 20,
            allowed_origins: Vec::new(),
        }
    }
}

/// Where a connection comes from, for per-source budgets: IPv4 (and IPv4-mapped IPv6)
/// addresses whole, IPv6 addresses by their /64, which one host usually holds whole.
pub fn source_of(ip: IpAddr) -> Source {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6, |v4| v4.to_ipv6_mapped()),
    };
    let mut bytes = v6.octets();
    if v6.to_ipv4_mapped().is_none()
        && let Some(host) = bytes.get_mut(8..)
    {
        host.fill(0);
    }
    Source(bytes)
}

/// Counts open sockets per source and in all.
#[derive(Debug)]
pub(crate) struct Admission {
    per_source: usize,
    total: usize,
    open: Mutex<(HashMap<Source, usize>, usize)>,
}

/// One admitted socket; dropping it gives its place back.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    source: Source,
}

impl Admission {
    pub fn new(limits: &HostLimits) -> Arc<Self> {
        Arc::new(Admission {
            per_source: limits.max_connections_per_source,
            total: limits.max_sockets,
            open: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// A place for one more socket from `ip`, if its source and the relay have room.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let source = source_of(ip);
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_source, total) = &mut *open;
        let count = by_source.entry(source).or_insert(0);
        if *count >= self.per_source || *total >= self.total {
            if *count == 0 {
                by_source.remove(&source);
            }
            return None;
        }
        *count += 1;
        *total += 1;
        Some(Ticket { admission: self.clone(), source })
    }
}

impl Ticket {
    /// Where the socket comes from.
    pub fn source(&self) -> Source {
        self.source
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_source, total) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(count) = by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                by_source.remove(&self.source);
            }
        }
    }
}

/// Raises this process's open-file limit to its hard limit (each connection holds a socket, and
/// the store its files); returns the limit now in force.
#[cfg(unix)]
pub(crate) fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        // Refused (macOS caps it below an unlimited hard limit): the limit stays as it was.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// See the unix version: other systems keep their limit.
#[cfg(not(unix))]
pub(crate) fn raise_descriptor_limit() -> Option<u64> {
    None
}

/// Bytes free for this process on the file system holding `dir`.
#[cfg(unix)]
pub(crate) fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// See the unix version: unknown elsewhere, so never below the floor.
#[cfg(not(unix))]
pub(crate) fn free_bytes(_dir: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_capped_per_source_and_in_all_and_given_back_on_drop() {
        let limits = HostLimits { max_connections_per_source: 2, max_sockets: 3, ..HostLimits::default() };
        let admission = Admission::new(&limits);
        let (a, b, c) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        let first = [admission.admit(a), admission.admit(a)];
        assert!(first.iter().all(Option::is_some));
        assert!(admission.admit(a).is_none(), "over the source's cap");
        let other = admission.admit(b);
        assert!(other.is_some());
        assert!(admission.admit(c).is_none(), "over the total");
        drop(first);
        assert!(admission.admit(a).is_some(), "places given back");
    }

    #[test]
    fn ipv6_sources_are_their_64_and_mapped_ipv4_is_ipv4() {
        let a = source_of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = source_of("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = source_of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(source_of("::ffff:10.0.0.1".parse().unwrap()), source_of("10.0.0.1".parse().unwrap()));
        assert_ne!(source_of("10.0.0.1".parse().unwrap()), source_of("10.0.0.2".parse().unwrap()));
    }
}
