//! Every command through Tauri's IPC (mock runtime, real plugin, real relay on loopback):
//! the shapes apps see, and a clear `{ kind, message }` for each kind of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

mod support;

use serde_json::{Value, json};
use support::{Device, next_matching, relay_string, temp_relay};
use tauri::ipc::InvokeBody;
use tauri_plugin_sync::{Config, Invite, PullResult, PushResult};
use zerok_core::CoreRng;
use zerok_core::invite::ShortCode;

#[test]
fn before_anything_the_device_is_offline_at_cursor_zero() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(dir.path(), Some("zerok1:unused".into()));
    assert_eq!(device.call_json::<String>("sync_status", Value::Null), Ok("offline".into()));
    assert_eq!(device.call_json::<u64>("sync_last_cursor", Value::Null), Ok(0));
}

#[test]
fn a_missing_or_malformed_relay_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(dir.path(), None);
    assert_eq!(device.error_kind("sync_enable", InvokeBody::Json(Value::Null)), "config");
    let device = Device::new(dir.path(), Some("https://relay.example.com".into()));
    let error = device.call_json::<Value>("sync_create_invite", Value::Null).unwrap_err();
    assert_eq!(error["kind"], "config");
    assert!(error["message"].as_str().unwrap_or("").contains("zerok1:"), "{error}");
}

#[test]
fn bad_pushes_are_refused_with_their_kind_and_queue_nothing() {
    let (_relay_dir, relay) = temp_relay();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(dir.path(), Some(relay_string(&relay)));

    assert_eq!(device.error_kind("sync_push", InvokeBody::Raw(b"x".to_vec())), "notInGroup", "no group yet");
    assert_eq!(device.error_kind("sync_now", InvokeBody::Json(Value::Null)), "notInGroup");
    device.call_json::<Invite>("sync_create_invite", Value::Null).unwrap();

    assert_eq!(device.error_kind("sync_push", InvokeBody::Raw(Vec::new())), "emptyData");
    assert_eq!(device.error_kind("sync_push", InvokeBody::Raw(vec![0; (1 << 20) + 1])), "tooLarge");
    assert_eq!(device.error_kind("sync_push", InvokeBody::Json(json!({ "data": "text" }))), "badRequest");
    assert_eq!(device.error_kind("sync_push", InvokeBody::Json(json!({ "data": [1, 300] }))), "badRequest");
    assert_eq!(device.error_kind("sync_push", InvokeBody::Json(json!({}))), "badRequest");
    device.wait_status("synced");

    // The JSON form works too, and the size limit itself is allowed.
    let small: PushResult = device.call("sync_push", InvokeBody::Json(json!({ "data": [1, 2, 3] }))).unwrap();
    let array: PushResult = device.call("sync_push", InvokeBody::Json(json!([4, 5]))).unwrap();
    let large: PushResult = device.call("sync_push", InvokeBody::Raw(vec![7; 1 << 20])).unwrap();
    assert!(!small.pending && !array.pending && !large.pending, "{small:?} {array:?} {large:?}");
    assert_eq!((small.cursor, array.cursor, large.cursor), (1, 2, 3), "only the good pushes reached the relay");
}

#[test]
fn malformed_expired_and_unknown_invites_are_refused_with_their_kind() {
    let (_relay_dir, relay) = temp_relay();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let inviter = Device::with_config(Config { invite_ttl_secs: Some(1), ..support::config(a_dir.path(), &relay) });
    let joiner = Device::new(b_dir.path(), Some(relay_string(&relay)));
    let join = |code: &str| joiner.error_kind("sync_join_invite", InvokeBody::Json(json!({ "invite": code })));

    assert_eq!(join(""), "invalidInvite");
    assert_eq!(join("not a code"), "invalidInvite");
    assert_eq!(join("AAAA-BBBB-CCCC"), "invalidInvite", "too short");
    assert_eq!(join("0KSYNC:AAAA"), "invalidInvite", "truncated QR text");
    let code = ShortCode::generate(&mut CoreRng::from_seed([3; 32])).display();
    let last = code.chars().last().unwrap_or('0');
    let typo = format!("{}{}", &code[..code.len() - 1], if last == '0' { '1' } else { '0' });
    assert_eq!(join(&typo), "invalidInvite", "check character");
    // Well formed, but no device opened this invite: the relay answers as for a wrong code
    // (a slot scan must not tell empty slots from live ones).
    assert_eq!(join(&code), "wrongCode");
    assert!(joiner.call_json::<Value>("sync_join_invite", json!({})).is_err(), "no invite argument");

    let invite: Invite = inviter.call_json("sync_create_invite", Value::Null).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(join(&invite.qr_text), "inviteExpired", "the QR text carries its expiry");
    assert_eq!(join(&invite.short_code), "wrongCode", "the relay closed the expired slot");
    assert_eq!(joiner.call_json::<String>("sync_status", Value::Null), Ok("offline".into()), "still no group");
}

#[test]
fn an_invite_has_a_qr_image_a_short_code_and_an_expiry_and_a_second_is_refused_while_open() {
    let (_relay_dir, relay) = temp_relay();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(dir.path(), Some(relay_string(&relay)));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;

    let invite: Invite = device.call_json("sync_create_invite", Value::Null).unwrap();
    assert!(invite.qr_code.starts_with("data:image/svg+xml;base64,"), "{}", invite.qr_code);
    assert!(invite.qr_text.starts_with("0KSYNC:"), "{}", invite.qr_text);
    let groups: Vec<&str> = invite.short_code.split('-').collect();
    assert!(groups.len() == 4 && groups.iter().all(|g| g.len() == 4), "{}", invite.short_code);
    assert!((now_ms + 590_000..now_ms + 610_000).contains(&invite.expires_at), "ten minutes: {}", invite.expires_at);

    assert_eq!(device.error_kind("sync_create_invite", InvokeBody::Json(Value::Null)), "pairingBusy");
    assert_eq!(
        device.error_kind("sync_join_invite", InvokeBody::Json(json!({ "invite": invite.short_code }))),
        "alreadyInGroup"
    );
}

#[test]
fn pull_pages_and_reads_offline() {
    let (_relay_dir, relay) = temp_relay();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Device::new(a_dir.path(), Some(relay_string(&relay)));
    let b = Device::new(b_dir.path(), Some(relay_string(&relay)));
    let invite: Invite = a.call_json("sync_create_invite", Value::Null).unwrap();
    b.call_json::<Value>("sync_join_invite", json!({ "invite": invite.short_code })).unwrap();
    let arrivals = b.events("sync://blob-available");
    for i in 0..150u32 {
        a.call::<PushResult>("sync_push", InvokeBody::Raw(i.to_le_bytes().to_vec())).unwrap();
    }
    next_matching(&arrivals, |v| v["cursor"] == 150);

    let first: PullResult = b.call_json("sync_pull", json!({ "afterCursor": null })).unwrap();
    assert_eq!((first.blobs.len(), first.has_more, first.max_cursor), (100, true, 100));
    let rest: PullResult = b.call_json("sync_pull", json!({ "afterCursor": first.max_cursor })).unwrap();
    assert_eq!((rest.blobs.len(), rest.has_more, rest.max_cursor), (50, false, 150));
    let data: Vec<u8> = rest.blobs.iter().flat_map(|blob| blob.data.clone()).collect();
    assert_eq!(data, (100..150u32).flat_map(u32::to_le_bytes).collect::<Vec<_>>(), "in order, intact");

    tauri::async_runtime::block_on(relay.shutdown()).unwrap();
    let again: PullResult = b.call_json("sync_pull", json!({ "afterCursor": 149 })).unwrap();
    assert_eq!(again.blobs.len(), 1, "pull reads the device's store, relay or not");
    let empty: PullResult = b.call_json("sync_pull", json!({ "afterCursor": 150 })).unwrap();
    assert_eq!((empty.blobs.len(), empty.has_more, empty.max_cursor), (0, false, 150));
}
