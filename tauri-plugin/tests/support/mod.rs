//! A plugin instance inside Tauri's mock runtime (the real plugin code, IPC and ACL checks; no
//! webview), and a real relay on loopback.
#![allow(dead_code, reason = "each test file uses a part")]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, WebviewWindow, WebviewWindowBuilder};
use tauri_plugin_sync::Config;
use tauri_utils::acl::ExecutionContext;
use tauri_utils::acl::resolved::{Resolved, ResolvedCommand, ResolvedCommandReference};
use zerok_relay::{RelayServer, RelayServerConfig};
use zerok_transport_iroh::connection;

include!("../../command_names.rs");

pub const WAIT: Duration = Duration::from_secs(30);

/// One app with the plugin, its window, and its events.
pub struct Device {
    pub app: App<MockRuntime>,
    pub window: WebviewWindow<MockRuntime>,
}

impl Device {
    /// An app whose plugin uses `dir` and the relay `relay` (a connection string).
    pub fn new(dir: &Path, relay: Option<String>) -> Device {
        Device::with_config(Config { relay, ..config_without_relay(dir) })
    }

    pub fn with_config(config: Config) -> Device {
        let mut context = mock_context(noop_assets());
        // Plugin commands are always checked against the ACL, which the mock context leaves
        // empty: grant this window every command, as `sync:default` does in an app.
        let mut resolved = Resolved::default();
        for command in COMMANDS {
            let reference =
                ResolvedCommandReference::new("test".into(), format!("sync:allow-{}", command.replace('_', "-")));
            let any = vec![glob::Pattern::new("*").unwrap()];
            resolved.allowed_commands.insert(
                format!("plugin:sync|{command}"),
                vec![ResolvedCommand::new(ExecutionContext::Local, reference, any.clone(), any, None)],
            );
        }
        *context.runtime_authority_mut() = tauri::ipc::RuntimeAuthority::new(Default::default(), resolved);
        let app =
            mock_builder().plugin(tauri_plugin_sync::Builder::new().config(config).build()).build(context).unwrap();
        let window = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
        Device { app, window }
    }

    /// Invokes `plugin:sync|{command}` as the webview would; the error is the `{ kind, message }` JSON.
    pub fn call<T: DeserializeOwned>(&self, command: &str, body: InvokeBody) -> Result<T, Value> {
        let request = InvokeRequest {
            cmd: format!("plugin:sync|{command}"),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body,
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, request).map(|body| body.deserialize::<T>().unwrap())
    }

    pub fn call_json<T: DeserializeOwned>(&self, command: &str, args: Value) -> Result<T, Value> {
        self.call(command, InvokeBody::Json(args))
    }

    /// The kind of the error `command` fails with.
    pub fn error_kind(&self, command: &str, body: InvokeBody) -> String {
        match self.call::<Value>(command, body) {
            Ok(v) => panic!("{command} succeeded with {v}, expected an error"),
            Err(e) => e["kind"].as_str().unwrap_or_else(|| panic!("not {{ kind, message }}: {e}")).to_owned(),
        }
    }

    /// Every payload of the app event `name` from now on.
    pub fn events(&self, name: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.app.listen(name, move |e| {
            let _ = tx.send(serde_json::from_str(e.payload()).unwrap_or(Value::Null));
        });
        rx
    }

    /// Runs `sync_now` and returns the status it ended with.
    pub fn sync_now_status(&self) -> String {
        let result: Value = self.call_json("sync_now", Value::Null).unwrap();
        result["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `status()` says `want`.
    pub fn wait_status(&self, want: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let status: String = self.call_json("sync_status", Value::Null).unwrap();
            if status == want {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "status stayed {status}, expected {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A device in `dir` on loopback, syncing through `relay`.
pub fn config(dir: &Path, relay: &RelayServer) -> Config {
    Config { relay: Some(relay_string(relay)), ..config_without_relay(dir) }
}

fn config_without_relay(dir: &Path) -> Config {
    Config { data_dir: Some(dir.to_path_buf()), bind: Some("127.0.0.1:0".parse().unwrap()), ..Config::default() }
}

/// A relay on loopback in a directory of its own (kept for restarts).
pub fn temp_relay() -> (tempfile::TempDir, RelayServer) {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path(), "127.0.0.1:0");
    (dir, relay)
}

/// A relay on loopback in `dir` (the same dir and `bind` restart the same relay).
pub fn start_relay(dir: &Path, bind: &str) -> RelayServer {
    tauri::async_runtime::block_on(RelayServer::start(RelayServerConfig::new(dir.to_path_buf(), bind.parse().unwrap())))
        .unwrap()
}

pub fn relay_string(relay: &RelayServer) -> String {
    connection::format(relay.info())
}

/// The next payload on `events` that `matches`, within [`WAIT`].
pub fn next_matching(events: &mpsc::Receiver<Value>, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(v) if matches(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("no matching event within {WAIT:?}"),
        }
    }
}
