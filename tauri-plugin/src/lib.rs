//! # tauri-plugin-sync
//!
//! The Tauri v2 plugin `sync`: zero-knowledge sync of app data between a user's devices
//! through a 0k-sync relay that only ever sees ciphertext. Devices pair with a QR code or a
//! short code; there are no accounts.
//!
//! ```ignore (needs an app's tauri.conf.json)
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! tauri::Builder::default()
//!     .plugin(tauri_plugin_sync::init()) // reads plugins.sync from tauri.conf.json
//!     .run(tauri::generate_context!())?;
//! # Ok(()) }
//! ```
//!
//! From JavaScript, use the `@0k-sync/tauri-plugin` package (`import { sync } from
//! '@0k-sync/tauri-plugin'`); from Rust, [`SyncExt::sync`] gives the same calls.
//!
//! Local-first: `push` puts the blob in the device's durable outbox before anything else, so it
//! succeeds offline and nothing is lost when sync fails or the app is killed. Sync follows the
//! app's lifecycle (see [`lifecycle`](crate#lifecycle)): launch connects and catches up, focus
//! and resume catch up, going to the background or exiting tries a flush for at most 500 ms.
//!
//! ## Lifecycle
//!
//! | event                               | action                                    |
//! |-------------------------------------|-------------------------------------------|
//! | app ready                           | connect, push pending, pull (background)  |
//! | window focused; mobile resumed      | push pending, pull (background)           |
//! | mobile suspended                    | flush for at most 500 ms, then disconnect |
//! | exit                                | flush for at most 500 ms, then stop       |
#![forbid(unsafe_code)]

mod commands;
mod config;
mod error;
pub mod events;
mod handle;
mod lifecycle;
mod models;

use std::net::SocketAddr;
use std::path::PathBuf;

use tauri::plugin::TauriPlugin;
use tauri::{Manager, Runtime};

pub use config::Config;
pub use error::{Error, Result};
pub use handle::SyncHandle;
pub use models::{
    Blob, BlobInfo, ConnectionInfo, ConnectionStatus, Invite, PairingInfo, Progress, PullResult, PushAcked, PushResult,
    StatusInfo, SyncError, SyncNowResult,
};

use config::Settings;

/// The plugin's state from anything that reaches the app (`AppHandle`, `App`, windows).
pub trait SyncExt<R: Runtime> {
    /// The sync plugin.
    fn sync(&self) -> &SyncHandle<R>;
}

impl<R: Runtime, T: Manager<R>> SyncExt<R> for T {
    fn sync(&self) -> &SyncHandle<R> {
        self.state::<SyncHandle<R>>().inner()
    }
}

/// The plugin with its configuration from `tauri.conf.json` alone.
pub fn init<R: Runtime>() -> TauriPlugin<R, Option<Config>> {
    Builder::new().build()
}

/// The plugin with settings given in code, which take precedence over `tauri.conf.json`.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// Nothing set: everything comes from `tauri.conf.json`.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The relay's connection string (`zerok1:…`, printed by `zerok relay`).
    pub fn relay(mut self, connection_string: impl Into<String>) -> Self {
        self.config.relay = Some(connection_string.into());
        self
    }

    /// Where the device's data lives (default: `0k-sync` in the app's data directory).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// The local UDP address (default `0.0.0.0:0`).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = Some(addr);
        self
    }

    /// Every setting at once; the ones `config` leaves unset come from `tauri.conf.json`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The plugin.
    pub fn build<R: Runtime>(self) -> TauriPlugin<R, Option<Config>> {
        tauri::plugin::Builder::<R, Option<Config>>::new("sync")
            .invoke_handler(tauri::generate_handler![
                commands::sync_enable,
                commands::sync_disable,
                commands::sync_create_invite,
                commands::sync_join_invite,
                commands::sync_push,
                commands::sync_pull,
                commands::sync_status,
                commands::sync_last_cursor,
                commands::sync_now,
            ])
            .setup(move |app, api| {
                let file = api.config().clone().unwrap_or_default();
                let config = file.overridden_by(self.config);
                let settings =
                    Settings::resolve(config, || app.path().app_data_dir().ok().map(|dir| dir.join("0k-sync")))?;
                app.manage(SyncHandle::new(app.clone(), settings));
                Ok(())
            })
            .on_event(lifecycle::on_event)
            .build()
    }
}
