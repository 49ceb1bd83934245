//! The real app in a real webview (WebKitGTK under Xvfb) pairs with a native device through a
//! relay on loopback, using the page's own controls: it joins by typing the short code, adds a
//! note that reaches the native device, and shows the note the native device pushes back.
//!
//! Needs `xvfb-run` (package xvfb) and the frontend built first (`npm run build`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use zerok_core::client::ClientEvent;
use zerok_relay::{RelayServer, RelayServerConfig};
use zerok_transport_iroh::{ClientOptions, SyncClient, connection};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_in_a_real_webview_pairs_and_syncs_with_a_native_device() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayServer::start(RelayServerConfig::new(dir.path().join("relay"), "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let native = SyncClient::open(ClientOptions::new(
        dir.path().join("native"),
        relay.info().clone(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    native.create_group(None, WAIT).await.unwrap();
    let invite = native.create_invite(WAIT).await.unwrap();
    let mut events = native.subscribe();

    let mut app = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x768x24", env!("CARGO_BIN_EXE_zerok-notes")])
        .env("ZEROK_RELAY", connection::format(relay.info()))
        .env("ZEROK_DATA_DIR", dir.path().join("app"))
        .env("ZEROK_SMOKE_JOIN", &invite.short_code)
        .stdout(Stdio::piped())
        .spawn()
        .expect("xvfb-run (apt package xvfb) runs the app");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = app.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    // The app's note arrives here, decrypted.
    let note = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(ClientEvent::BlobAvailable { cursor, .. }) = events.recv().await {
                let blobs = native.pull(cursor - 1, 1).await.unwrap();
                return serde_json::from_slice::<serde_json::Value>(&blobs[0].payload).unwrap();
            }
        }
    })
    .await
    .expect("the app's note reached the native device");
    assert_eq!(note["text"], "hello from the Tauri app");

    let reply =
        serde_json::json!({ "id": "native-1", "text": "hello from the native device", "at": 1_700_000_000_000u64 });
    native.push(reply.to_string().into_bytes()).await.unwrap();

    let report = tokio::task::spawn_blocking(move || {
        loop {
            match lines.recv_timeout(WAIT) {
                Ok(line) => {
                    if let Some(json) = line.strip_prefix("SMOKE_REPORT ") {
                        return serde_json::from_str::<serde_json::Value>(json).unwrap();
                    }
                }
                Err(_) => panic!("the app reported nothing within {WAIT:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert!(report.get("failed").is_none(), "{report}");
    let shown: Vec<&str> = report["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert!(shown.contains(&"hello from the Tauri app") && shown.contains(&"hello from the native device"), "{report}");
    assert_eq!(report["status"], "☁️✓ synced", "{report}");
    assert_eq!(report["error"], "", "{report}");
    let status = tokio::task::spawn_blocking(move || app.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the app exits cleanly after its report: {status}");
    native.close(Duration::from_millis(100)).await;
    relay.shutdown().await.unwrap();
}
