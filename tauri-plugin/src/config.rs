//! Configuration: the `plugins.sync` section of `tauri.conf.json`, with [`crate::Builder`]
//! overrides on top.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use zerok_core::client::RelayInfo;
use zerok_transport_iroh::connection;

use crate::error::{Error, Result};

/// `plugins.sync` in `tauri.conf.json`. Every field is optional.
///
/// ```json
/// { "plugins": { "sync": { "relay": "zerok1:<id>:<key>@relay.example.com:4433" } } }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The relay's connection string (its address and keys), as `zerok relay` prints it.
    pub relay: Option<String>,
    /// Where the device's keys, outbox and received blobs live. Default: `0k-sync` in the app's
    /// data directory.
    pub data_dir: Option<PathBuf>,
    /// The local UDP address to use. Default: `0.0.0.0:0`.
    pub bind: Option<SocketAddr>,
    /// The relay's admission token, if it requires one to create groups.
    pub admission_token: Option<String>,
    /// How long an invite stays valid, in seconds. Default: 600.
    pub invite_ttl_secs: Option<u64>,
    /// Whether a device that enabled sync before reconnects by itself at launch. Default: true.
    pub auto_start: Option<bool>,
}

impl Config {
    /// This configuration with every field `over` sets taking precedence.
    pub(crate) fn overridden_by(self, over: Config) -> Config {
        Config {
            relay: over.relay.or(self.relay),
            data_dir: over.data_dir.or(self.data_dir),
            bind: over.bind.or(self.bind),
            admission_token: over.admission_token.or(self.admission_token),
            invite_ttl_secs: over.invite_ttl_secs.or(self.invite_ttl_secs),
            auto_start: over.auto_start.or(self.auto_start),
        }
    }
}

/// The configuration with defaults filled in.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub relay: std::result::Result<RelayInfo, String>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub admission_token: Option<Vec<u8>>,
    pub invite_ttl: Duration,
    pub auto_start: bool,
}

impl Settings {
    pub fn resolve(config: Config, default_data_dir: impl FnOnce() -> Option<PathBuf>) -> Result<Settings> {
        let relay = match &config.relay {
            Some(text) => connection::parse(text),
            None => {
                Err("no relay: set plugins.sync.relay in tauri.conf.json to the connection string `zerok relay` prints"
                    .into())
            }
        };
        let data_dir = config
            .data_dir
            .or_else(default_data_dir)
            .ok_or_else(|| Error::Config("no data directory: set plugins.sync.dataDir".into()))?;
        Ok(Settings {
            relay,
            data_dir,
            bind: config.bind.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            admission_token: config.admission_token.map(String::into_bytes),
            invite_ttl: Duration::from_secs(config.invite_ttl_secs.unwrap_or(600)),
            auto_start: config.auto_start.unwrap_or(true),
        })
    }

    pub fn relay(&self) -> Result<RelayInfo> {
        self.relay.clone().map_err(Error::Config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_camel_case_and_refuses_unknown_keys() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "relay": "zerok1:x", "dataDir": "/tmp/d", "inviteTtlSecs": 60, "autoStart": false
        }))
        .unwrap_or_default();
        assert_eq!(config.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(config.invite_ttl_secs, Some(60));
        assert_eq!(config.auto_start, Some(false));
        assert!(serde_json::from_value::<Config>(serde_json::json!({ "relayUrl": "x" })).is_err());
    }

    #[test]
    fn builder_settings_win_and_defaults_fill_the_rest() {
        let file = Config {
            relay: Some("file".into()),
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 9))),
            ..Config::default()
        };
        let merged = file.overridden_by(Config { relay: Some("builder".into()), ..Config::default() });
        assert_eq!(merged.relay.as_deref(), Some("builder"));
        assert_eq!(merged.bind, Some(SocketAddr::from(([127, 0, 0, 1], 9))));

        let settings = Settings::resolve(Config::default(), || Some(PathBuf::from("/data"))).ok();
        let settings = settings.as_ref();
        assert_eq!(settings.map(|s| s.data_dir.clone()), Some(PathBuf::from("/data")));
        assert_eq!(settings.map(|s| s.invite_ttl), Some(Duration::from_secs(600)));
        assert!(settings.is_some_and(|s| s.auto_start && s.relay.is_err()), "a missing relay is reported at use");
        assert!(Settings::resolve(Config::default(), || None).is_err());
    }
}
