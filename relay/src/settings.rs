//! `zerok relay` settings: every limit of the relay, from flags, then the environment, then a
//! TOML file (`--config`), then the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{HostLimits, RelayServerConfig};
use serde::Deserialize;
use zerok_core::Duration;
use zerok_core::relay::RelayLimits;

/// A settings file that cannot be read, or a setting out of range: one line for the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl SettingsError {
    fn msg(m: &str) -> Self {
        SettingsError(m.to_owned())
    }
}

/// One relay setting per field; unset ones fall through to the file, then to the default.
/// The TOML file uses the same names with underscores (`push_per_sec = 500`).
#[derive(clap::Args, Deserialize, Default, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Where the relay keeps its identity and database [default: zerok-relay].
    #[arg(long, env = "ZEROK_RELAY_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where groups and blobs are kept: `sqlite` (relay.db in the data dir) or a PostgreSQL URL, postgres://user@host:port/db, for relays that share one database [default: sqlite].
    #[arg(long, env = "ZEROK_RELAY_STORE")]
    pub store: Option<String>,
    /// UDP address to listen on [default: 127.0.0.1:4433].
    #[arg(long, env = "ZEROK_RELAY_BIND")]
    pub bind: Option<SocketAddr>,
    /// Serve HTTP on this TCP address: /health, /metrics (Prometheus), /connection, and /sync, the WebSocket browsers sync through [default: off].
    #[arg(long, env = "ZEROK_RELAY_HTTP")]
    pub http: Option<SocketAddr>,
    /// Serve the operator's /health and /metrics on this TCP address instead (a private one); the --http port then serves /health, /connection and /sync only [default: off].
    #[arg(long, env = "ZEROK_RELAY_METRICS_HTTP")]
    pub metrics_http: Option<SocketAddr>,
    /// Log filter: a level, or `target=level` pairs, e.g. `info` or `warn,zerok=debug`
    /// [default: warn,zerok=info].
    #[arg(long, env = "ZEROK_LOG")]
    pub log: Option<String>,
    /// Seconds a connection may take to complete its handshake [default: 10].
    #[arg(long, env = "ZEROK_HANDSHAKE_TIMEOUT_SECS")]
    pub handshake_timeout_secs: Option<u64>,
    /// Largest first handshake message accepted before authentication, bytes [default: 1024].
    #[arg(long, env = "ZEROK_MAX_PREAUTH_RECORD")]
    pub max_preauth_record: Option<usize>,
    /// Largest envelope (sealed blob) accepted, bytes [default: 1 MiB plus the envelope overhead].
    #[arg(long, env = "ZEROK_MAX_ENVELOPE")]
    pub max_envelope: Option<usize>,
    /// Most blobs in one pull page [default: 256].
    #[arg(long, env = "ZEROK_MAX_PAGE_BLOBS")]
    pub max_page_blobs: Option<u32>,
    /// Most envelope bytes in one pull page [default: 1572864].
    #[arg(long, env = "ZEROK_MAX_PAGE_BYTES")]
    pub max_page_bytes: Option<usize>,
    /// Stored bytes per group [default: 1073741824].
    #[arg(long, env = "ZEROK_GROUP_QUOTA_BYTES")]
    pub group_quota_bytes: Option<u64>,
    /// Stored blobs per group [default: 1000000].
    #[arg(long, env = "ZEROK_GROUP_QUOTA_BLOBS")]
    pub group_quota_blobs: Option<u64>,
    /// Pushes per device key in a burst [default: 1000].
    #[arg(long, env = "ZEROK_PUSH_BURST")]
    pub push_burst: Option<u32>,
    /// Pushes per second per device key, sustained [default: 500].
    #[arg(long, env = "ZEROK_PUSH_PER_SEC")]
    pub push_per_sec: Option<u32>,
    /// Invite lookups per connection in a burst [default: 5].
    #[arg(long, env = "ZEROK_SLOT_OPEN_BURST")]
    pub slot_open_burst: Option<u32>,
    /// Invite lookups per connection per minute, sustained [default: 5].
    #[arg(long, env = "ZEROK_SLOT_OPEN_PER_MIN")]
    pub slot_open_per_min: Option<u32>,
    /// Longest life of an invite slot, seconds [default: 600].
    #[arg(long, env = "ZEROK_MAX_SLOT_TTL_SECS")]
    pub max_slot_ttl_secs: Option<u64>,
    /// Wrong codes tried against one invite before it is closed [default: 3].
    #[arg(long, env = "ZEROK_MAX_SLOT_ATTEMPTS")]
    pub max_slot_attempts: Option<u8>,
    /// Accepted clock difference of a device's handshake, seconds [default: 600].
    #[arg(long, env = "ZEROK_HANDSHAKE_CLOCK_WINDOW_SECS")]
    pub handshake_clock_window_secs: Option<u64>,
    /// Handshakes remembered by the replay guard [default: 100000].
    #[arg(long, env = "ZEROK_REPLAY_GUARD_KEYS")]
    pub replay_guard_keys: Option<usize>,
    /// Most connections at once, devices and browsers together [default: 10000].
    #[arg(long, env = "ZEROK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Invite lookups across all connections, burst [default: 200].
    #[arg(long, env = "ZEROK_SLOT_OPEN_GLOBAL_BURST")]
    pub slot_open_global_burst: Option<u32>,
    /// Invite lookups across all connections per second, sustained [default: 50].
    #[arg(long, env = "ZEROK_SLOT_OPEN_GLOBAL_PER_SEC")]
    pub slot_open_global_per_sec: Option<u32>,
    /// Invite lookups from one address (all its connections) in a burst [default: 20].
    #[arg(long, env = "ZEROK_SLOT_OPEN_SOURCE_BURST")]
    pub slot_open_source_burst: Option<u32>,
    /// Invite lookups from one address per minute, sustained [default: 20].
    #[arg(long, env = "ZEROK_SLOT_OPEN_SOURCE_PER_MIN")]
    pub slot_open_source_per_min: Option<u32>,
    /// Frames per connection in a burst, of every kind; a connection over it is closed (at least twice push_burst) [default: 4000].
    #[arg(long, env = "ZEROK_FRAME_BURST")]
    pub frame_burst: Option<u32>,
    /// Frames per connection per second, sustained (at least twice push_per_sec) [default: 2000].
    #[arg(long, env = "ZEROK_FRAME_PER_SEC")]
    pub frame_per_sec: Option<u32>,
    /// Most groups the relay holds [default: 100000].
    #[arg(long, env = "ZEROK_MAX_GROUPS")]
    pub max_groups: Option<u64>,
    /// Most bytes stored across all groups [default: no limit but the disk's, see min_free_bytes].
    #[arg(long, env = "ZEROK_MAX_TOTAL_BYTES")]
    pub max_total_bytes: Option<u64>,
    /// Group creations across all addresses in a burst [default: 200].
    #[arg(long, env = "ZEROK_GROUP_CREATE_BURST")]
    pub group_create_burst: Option<u32>,
    /// Group creations across all addresses per minute, sustained [default: 120].
    #[arg(long, env = "ZEROK_GROUP_CREATE_PER_MIN")]
    pub group_create_per_min: Option<u32>,
    /// Group creations from one address in a burst [default: 20].
    #[arg(long, env = "ZEROK_GROUP_CREATE_SOURCE_BURST")]
    pub group_create_source_burst: Option<u32>,
    /// Group creations from one address per minute, sustained [default: 10].
    #[arg(long, env = "ZEROK_GROUP_CREATE_SOURCE_PER_MIN")]
    pub group_create_source_per_min: Option<u32>,
    /// Sockets open at once from one address (IPv4, or an IPv6 /64), QUIC and TCP; behind a reverse proxy, all browsers share the proxy's [default: 256].
    #[arg(long, env = "ZEROK_MAX_CONNECTIONS_PER_SOURCE")]
    pub max_connections_per_source: Option<usize>,
    /// Pushes are refused (devices keep them and retry) while the data dir's file system has less free than this, bytes; 0: only when it is full [default: 67108864].
    #[arg(long, env = "ZEROK_MIN_FREE_BYTES")]
    pub min_free_bytes: Option<u64>,
    /// Browser origins allowed to open /sync, comma-separated exact Origin values [default: any].
    #[arg(long, env = "ZEROK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Days blobs are kept; 0 keeps them until every device has them [default: 30].
    #[arg(long, env = "ZEROK_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// Delete blobs once every registered device has acknowledged them [default: false].
    #[arg(long, env = "ZEROK_RETENTION_ALL_ACKED", num_args = 0..=1, default_missing_value = "true")]
    pub retention_all_acked: Option<bool>,
    /// Creating a group needs this token [default: anyone may create groups].
    #[arg(long, env = "ZEROK_ADMISSION_TOKEN")]
    pub admission_token: Option<String>,
}

/// Everything `zerok relay` runs with.
pub struct Resolved {
    /// The server's configuration.
    pub server: RelayServerConfig,
    /// The log filter.
    pub log: String,
}

impl RelaySettings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::msg(&format!("cannot read the config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| SettingsError::msg(&format!("config file {}: {}", path.display(), e.message())))
    }

    /// These settings, with the unset ones taken from `lower`.
    pub fn over(self, lower: RelaySettings) -> RelaySettings {
        macro_rules! each_over {
            ($($field:ident),* $(,)?) => { RelaySettings { $($field: self.$field.or(lower.$field)),* } };
        }
        each_over!(
            data_dir,
            store,
            bind,
            http,
            metrics_http,
            log,
            handshake_timeout_secs,
            max_preauth_record,
            max_envelope,
            max_page_blobs,
            max_page_bytes,
            group_quota_bytes,
            group_quota_blobs,
            push_burst,
            push_per_sec,
            slot_open_burst,
            slot_open_per_min,
            max_slot_ttl_secs,
            max_slot_attempts,
            handshake_clock_window_secs,
            replay_guard_keys,
            max_connections,
            slot_open_global_burst,
            slot_open_global_per_sec,
            slot_open_source_burst,
            slot_open_source_per_min,
            frame_burst,
            frame_per_sec,
            max_groups,
            max_total_bytes,
            group_create_burst,
            group_create_per_min,
            group_create_source_burst,
            group_create_source_per_min,
            max_connections_per_source,
            min_free_bytes,
            allowed_origins,
            retention_days,
            retention_all_acked,
            admission_token,
        )
    }

    /// The configuration, defaults filled in; refuses settings that would break the relay.
    pub fn resolve(self) -> Result<Resolved, SettingsError> {
        let d = RelayLimits::default();
        let secs = Duration::from_secs;
        let limits = RelayLimits {
            handshake_timeout: self.handshake_timeout_secs.map_or(d.handshake_timeout, secs),
            max_preauth_record: self.max_preauth_record.unwrap_or(d.max_preauth_record),
            max_envelope: self.max_envelope.unwrap_or(d.max_envelope),
            max_page_blobs: self.max_page_blobs.unwrap_or(d.max_page_blobs),
            max_page_bytes: self.max_page_bytes.unwrap_or(d.max_page_bytes),
            group_quota_bytes: self.group_quota_bytes.unwrap_or(d.group_quota_bytes),
            group_quota_blobs: self.group_quota_blobs.unwrap_or(d.group_quota_blobs),
            push_burst: self.push_burst.unwrap_or(d.push_burst),
            push_per_sec: self.push_per_sec.unwrap_or(d.push_per_sec),
            slot_open_burst: self.slot_open_burst.unwrap_or(d.slot_open_burst),
            slot_open_per_min: self.slot_open_per_min.unwrap_or(d.slot_open_per_min),
            max_slot_ttl: self.max_slot_ttl_secs.map_or(d.max_slot_ttl, secs),
            max_slot_attempts: self.max_slot_attempts.unwrap_or(d.max_slot_attempts),
            handshake_clock_window_ms: self
                .handshake_clock_window_secs
                .map_or(d.handshake_clock_window_ms, |s| s.saturating_mul(1000)),
            replay_guard_keys: self.replay_guard_keys.unwrap_or(d.replay_guard_keys),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            slot_open_global_burst: self.slot_open_global_burst.unwrap_or(d.slot_open_global_burst),
            slot_open_global_per_sec: self.slot_open_global_per_sec.unwrap_or(d.slot_open_global_per_sec),
            slot_open_source_burst: self.slot_open_source_burst.unwrap_or(d.slot_open_source_burst),
            slot_open_source_per_min: self.slot_open_source_per_min.unwrap_or(d.slot_open_source_per_min),
            frame_burst: self.frame_burst.unwrap_or(d.frame_burst),
            frame_per_sec: self.frame_per_sec.unwrap_or(d.frame_per_sec),
            max_groups: self.max_groups.unwrap_or(d.max_groups),
            max_total_bytes: self.max_total_bytes.unwrap_or(d.max_total_bytes),
            group_create_burst: self.group_create_burst.unwrap_or(d.group_create_burst),
            group_create_per_min: self.group_create_per_min.unwrap_or(d.group_create_per_min),
            group_create_source_burst: self.group_create_source_burst.unwrap_or(d.group_create_source_burst),
            group_create_source_per_min: self.group_create_source_per_min.unwrap_or(d.group_create_source_per_min),
            retention_ttl: match self.retention_days {
                None => d.retention_ttl,
                Some(0) => None,
                Some(days) => Some(secs(days.saturating_mul(24 * 3600))),
            },
            retention_all_acked: self.retention_all_acked.unwrap_or(d.retention_all_acked),
            admission_token: self.admission_token.map(String::into_bytes),
        };
        let dh = HostLimits::default();
        let host = HostLimits {
            max_connections_per_source: self.max_connections_per_source.unwrap_or(dh.max_connections_per_source),
            // Room for every connection the core admits, and the sockets it refuses as they come.
            max_sockets: limits.max_connections + limits.max_connections / 5,
            min_free_bytes: self.min_free_bytes.unwrap_or(dh.min_free_bytes),
            allowed_origins: self.allowed_origins.unwrap_or_default(),
        };
        let at_least_one = [
            ("handshake_timeout_secs", limits.handshake_timeout.as_millis()),
            ("max_page_blobs", u64::from(limits.max_page_blobs)),
            ("push_burst", u64::from(limits.push_burst)),
            ("push_per_sec", u64::from(limits.push_per_sec)),
            ("max_slot_attempts", u64::from(limits.max_slot_attempts)),
            ("replay_guard_keys", limits.replay_guard_keys as u64),
            ("max_connections", limits.max_connections as u64),
            ("slot_open_global_burst", u64::from(limits.slot_open_global_burst)),
            ("slot_open_global_per_sec", u64::from(limits.slot_open_global_per_sec)),
            ("slot_open_source_burst", u64::from(limits.slot_open_source_burst)),
            ("slot_open_source_per_min", u64::from(limits.slot_open_source_per_min)),
            ("frame_burst", u64::from(limits.frame_burst)),
            ("frame_per_sec", u64::from(limits.frame_per_sec)),
            ("max_groups", limits.max_groups),
            ("group_create_burst", u64::from(limits.group_create_burst)),
            ("group_create_per_min", u64::from(limits.group_create_per_min)),
            ("group_create_source_burst", u64::from(limits.group_create_source_burst)),
            ("group_create_source_per_min", u64::from(limits.group_create_source_per_min)),
            ("max_connections_per_source", host.max_connections_per_source as u64),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(SettingsError::msg(&format!("{name} must be at least 1")));
        }
        if limits.max_envelope > d.max_envelope {
            return Err(SettingsError::msg(&format!(
                "max_envelope is at most {} (the largest blob a device seals)",
                d.max_envelope
            )));
        }
        Ok(Resolved {
            server: RelayServerConfig {
                data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from("zerok-relay")),
                bind: self.bind.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4433))),
                limits,
                http: self.http,
                metrics_http: self.metrics_http,
                host,
                store: match self.store {
                    Some(s) => s.parse().map_err(|e: crate::store::StoreOpenError| SettingsError(e.0))?,
                    None => crate::store::StoreLocation::Sqlite,
                },
            },
            log: self.log.unwrap_or_else(|| "warn,zerok=info".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults() {
        let file: RelaySettings =
            toml::from_str("push_per_sec = 50\npush_burst = 70\nretention_days = 0\nbind = \"0.0.0.0:9000\"\n")
                .unwrap();
        let flags = RelaySettings { push_per_sec: Some(7), ..RelaySettings::default() };
        let resolved = flags.over(file).resolve().unwrap();
        let limits = &resolved.server.limits;
        assert_eq!((limits.push_per_sec, limits.push_burst), (7, 70));
        assert_eq!(limits.retention_ttl, None, "0 days keeps blobs until every device has them");
        assert_eq!(resolved.server.bind, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(limits.group_quota_blobs, RelayLimits::default().group_quota_blobs);
        assert_eq!(resolved.log, "warn,zerok=info");
    }

    #[test]
    fn a_bad_file_or_value_is_one_clear_error() {
        let unknown = toml::from_str::<RelaySettings>("push_per_second = 5\n").unwrap_err();
        assert!(unknown.message().contains("unknown field `push_per_second`"), "{}", unknown.message());
        let wrong_type = toml::from_str::<RelaySettings>("push_burst = \"many\"\n").unwrap_err();
        assert!(wrong_type.message().contains("invalid type"), "{}", wrong_type.message());
        let zero = RelaySettings { push_per_sec: Some(0), ..RelaySettings::default() }.resolve();
        assert_eq!(zero.err().map(|f| f.0), Some("push_per_sec must be at least 1".to_owned()));
        let missing = RelaySettings::from_file(Path::new("/nonexistent/relay.toml")).err().map(|f| f.0);
        assert!(missing.is_some_and(|m| m.starts_with("cannot read the config file /nonexistent/relay.toml")));
    }
}
