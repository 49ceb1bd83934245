//! Two plugin instances (two apps, each with its own device) syncing through a real relay on
//! loopback, and the app lifecycle: relay down, exit, relaunch, disable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Device, config, next_matching, start_relay, temp_relay};
use tauri::ipc::InvokeBody;
use tauri_plugin_sync::{Invite, PullResult, PushResult, SyncExt};
use tempfile::TempDir;
use zerok_relay::RelayServer;

fn pair(a: &Device, b: &Device) {
    let a_codes = a.events("sync://pairing-code");
    let invite: Invite = a.call_json("sync_create_invite", Value::Null).unwrap();
    b.call_json::<Value>("sync_join_invite", json!({ "invite": invite.short_code })).unwrap();
    next_matching(&a_codes, |v| v["code"].is_string());
}

/// A relay and two devices paired through it; the directories live as long as the bindings.
struct Paired {
    relay_dir: TempDir,
    a_dir: TempDir,
    b_dir: TempDir,
    relay: RelayServer,
    a: Device,
    b: Device,
}

fn paired() -> Paired {
    let (relay_dir, relay) = temp_relay();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Device::with_config(config(a_dir.path(), &relay));
    let b = Device::with_config(config(b_dir.path(), &relay));
    pair(&a, &b);
    Paired { relay_dir, a_dir, b_dir, relay, a, b }
}

fn push(device: &Device, text: &str) -> PushResult {
    device.call("sync_push", InvokeBody::Raw(text.as_bytes().to_vec())).unwrap()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tauri::async_runtime::block_on(future)
}

#[test]
fn two_apps_pair_with_a_short_code_and_sync_both_ways() {
    let (_relay_dir, relay) = temp_relay();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Device::with_config(config(a_dir.path(), &relay));
    let b = Device::with_config(config(b_dir.path(), &relay));
    let (a_codes, b_codes) = (a.events("sync://pairing-code"), b.events("sync://pairing-code"));
    let added = a.events("sync://device-added");

    let invite: Invite = a.call_json("sync_create_invite", Value::Null).unwrap();
    b.call_json::<Value>("sync_join_invite", json!({ "invite": invite.short_code })).unwrap();
    let (a_code, b_code) = (next_matching(&a_codes, |_| true), next_matching(&b_codes, |_| true));
    assert_eq!(a_code["code"], b_code["code"], "both screens show the same confirmation code");
    next_matching(&added, |v| v["device"].is_string());

    let arrivals = b.events("sync://blob-available");
    let statuses = b.events("sync://status");
    let sent = push(&a, "buy milk");
    assert!(!sent.pending && sent.cursor >= 1, "{sent:?}");
    let info = next_matching(&arrivals, |v| v["cursor"] == sent.cursor);
    assert_eq!(info["id"], sent.blob_id);

    let page: PullResult = b.call_json("sync_pull", json!({ "afterCursor": sent.cursor - 1 })).unwrap();
    assert_eq!(page.blobs.len(), 1);
    let blob = &page.blobs[0];
    assert_eq!(
        (blob.data.as_slice(), blob.id.as_str(), blob.cursor),
        (&b"buy milk"[..], sent.blob_id.as_str(), sent.cursor)
    );
    assert_eq!(blob.sender.len(), 64);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(blob.timestamp <= now_ms && blob.timestamp + 60_000 > now_ms, "stored just now: {}", blob.timestamp);
    next_matching(&statuses, |v| v["lastCursor"] == sent.cursor);
    assert_eq!(b.call_json::<u64>("sync_last_cursor", Value::Null), Ok(sent.cursor));

    let back_arrivals = a.events("sync://blob-available");
    let reply = push(&b, "and bread");
    next_matching(&back_arrivals, |v| v["cursor"] == reply.cursor);
    let page: PullResult = a.call_json("sync_pull", json!({ "afterCursor": 0 })).unwrap();
    assert_eq!(
        page.blobs.iter().map(|b| b.data.clone()).collect::<Vec<_>>(),
        vec![b"and bread".to_vec()],
        "a device does not pull its own blobs"
    );
    a.wait_status("synced");
    b.wait_status("synced");
    assert_eq!(b.sync_now_status(), "synced");
}

#[test]
fn a_push_while_the_relay_is_down_is_pending_and_syncs_when_it_is_back_and_the_app_resumes() {
    let Paired { relay_dir, a_dir: _a_dir, b_dir: _b_dir, relay, a, b } = paired();
    let addr = relay.info().addrs[0].clone();
    block_on(relay.shutdown()).unwrap();

    let offline = push(&a, "written on the train");
    assert!(offline.pending && offline.cursor == 0, "{offline:?}");
    let status: String = a.call_json("sync_status", Value::Null).unwrap();
    assert!(status == "pending" || status == "offline", "{status}");
    let started = Instant::now();
    let status = a.sync_now_status();
    assert!(
        status != "synced" && started.elapsed() < Duration::from_secs(20),
        "{status} after {:?}",
        started.elapsed()
    );

    let relay = start_relay(relay_dir.path(), &addr);
    let arrivals = b.events("sync://blob-available");
    let acked = a.events("sync://push-acked");
    block_on(a.app.sync().app_resumed()).unwrap();
    block_on(b.app.sync().app_resumed()).unwrap();
    let ack = next_matching(&acked, |v| v["blobId"] == offline.blob_id);
    next_matching(&arrivals, |v| v["cursor"] == ack["cursor"]);
    a.wait_status("synced");
    drop(relay);
}

#[test]
fn exit_with_the_relay_down_takes_at_most_the_flush_budget_and_the_next_launch_sends_the_outbox() {
    let Paired { relay_dir, a_dir, b_dir: _b_dir, relay, a, b } = paired();
    let addr = relay.info().addrs[0].clone();
    block_on(relay.shutdown()).unwrap();
    let stranded = push(&a, "saved just before closing");
    assert!(stranded.pending);

    let started = Instant::now();
    block_on(a.app.sync().app_exiting());
    assert!(started.elapsed() < Duration::from_millis(900), "exit waited {:?}", started.elapsed());
    drop(a);

    let relay = start_relay(relay_dir.path(), &addr);
    let arrivals = b.events("sync://blob-available");
    block_on(b.app.sync().app_resumed()).unwrap();
    let a = Device::with_config(config(a_dir.path(), &relay));
    block_on(a.app.sync().app_launched()).unwrap();
    let info = next_matching(&arrivals, |v| v["id"] == stranded.blob_id);
    let page: PullResult =
        b.call_json("sync_pull", json!({ "afterCursor": info["cursor"].as_u64().unwrap() - 1 })).unwrap();
    assert_eq!(page.blobs[0].data, b"saved just before closing");
    a.wait_status("synced");
}

#[test]
fn disable_is_remembered_across_launches_and_pushes_still_queue() {
    let Paired { relay_dir: _relay_dir, a_dir, b_dir: _b_dir, relay, a, b } = paired();

    a.call_json::<Value>("sync_disable", Value::Null).unwrap();
    a.wait_status("offline");
    let queued = push(&a, "while sync is off");
    assert!(queued.pending);
    block_on(a.app.sync().app_exiting());
    drop(a);

    let a = Device::with_config(config(a_dir.path(), &relay));
    block_on(a.app.sync().app_launched()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.call_json::<String>("sync_status", Value::Null), Ok("offline".into()), "launch keeps it off");

    let arrivals = b.events("sync://blob-available");
    a.call_json::<Value>("sync_enable", Value::Null).unwrap();
    next_matching(&arrivals, |v| v["id"] == queued.blob_id);
    a.wait_status("synced");
}
