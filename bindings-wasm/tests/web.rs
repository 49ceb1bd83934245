//! The wasm API in headless Chromium (wasm-bindgen-test; scripts/wasm-test.sh): what the
//! JavaScript driver relies on, without a relay.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use zerok_wasm::{Device, decode_blob, qr_code};

wasm_bindgen_test_configure!(run_in_browser);

const RELAY: &str = "zerok1:0101010101010101010101010101010101010101010101010101010101010101:0202020202020202020202020202020202020202020202020202020202020202@127.0.0.1:4433,ws://127.0.0.1:8788/sync";

fn get(v: &JsValue, field: &str) -> JsValue {
    Reflect::get(v, &field.into()).unwrap()
}

fn text(v: &JsValue, field: &str) -> String {
    get(v, field).as_string().unwrap_or_default()
}

fn device(records: Array) -> Device {
    Device::new(RELAY, &[7; 32], &[9; 32], records, 1000.0, 1_700_000_000_000.0).map_err(JsValue::from).unwrap()
}

/// Polls until idle, completing every store write; returns the outputs (idle excluded).
fn drain(d: &mut Device, saved: &Array) -> Vec<JsValue> {
    let mut out = Vec::new();
    loop {
        let o = d.poll();
        match text(&o, "kind").as_str() {
            "idle" => return out,
            "store" => {
                for w in Array::from(&get(&o, "writes")).iter() {
                    if get(&w, "value").is_object() {
                        saved.push(&Array::of2(&get(&w, "key"), &get(&w, "value")));
                    }
                }
                d.store_done(get(&o, "op").as_f64().unwrap(), true, false, 1000.0, 1_700_000_000_000.0);
            }
            _ => {}
        }
        out.push(o);
    }
}

fn error_kind(e: JsValue) -> String {
    text(&e, "kind")
}

/// The core's own exercise (IK, SPAKE2 + XXpsk3 pairing, QR invite, envelope) in the browser's
/// wasm: every primitive links and runs there, with no `env` import (scripts/wasm-build.sh).
#[wasm_bindgen_test]
fn the_core_self_check_passes_in_wasm() {
    let out = zerok_core::selfcheck::self_check([7; 32]).unwrap();
    assert!(out.starts_with("ok confirmation="), "{out}");
}

#[wasm_bindgen_test]
fn a_new_device_is_offline_outside_any_group_and_refuses_pushes() {
    let mut d = device(Array::new());
    assert_eq!(d.status(), "offline");
    assert_eq!(d.cursor(), 0.0);
    assert!(!d.in_group());
    assert_eq!(d.device_id().len(), 64);
    assert_eq!(error_kind(d.push(b"x", 1.0, 1.0).unwrap_err()), "notInGroup");
    assert_eq!(error_kind(d.push(b"", 1.0, 1.0).unwrap_err()), "emptyData");
    assert_eq!(error_kind(d.join_invite("not a code", 1.0, 1.0).unwrap_err()), "invalidInvite");
    assert_eq!(error_kind(d.command("fly", 1.0, 1.0).unwrap_err()), "badRequest");
}

#[wasm_bindgen_test]
fn bad_connection_strings_and_damaged_state_are_errors() {
    assert!(Device::new("zerok1:xx", &[7; 32], &[9; 32], Array::new(), 0.0, 0.0).is_err());
    assert!(Device::new(RELAY, &[7; 31], &[9; 32], Array::new(), 0.0, 0.0).is_err());
    let damaged = Array::of1(&Array::of2(&"cursor".into(), &Uint8Array::from(&[1u8, 2][..])));
    assert!(Device::new(RELAY, &[7; 32], &[9; 32], damaged, 0.0, 0.0).is_err());
}

#[wasm_bindgen_test]
fn a_created_group_is_saved_then_connected_over_websocket_and_survives_reopening() {
    let saved = Array::new();
    let mut d = device(Array::new());
    d.command("createGroup", 1000.0, 1_700_000_000_000.0).map_err(JsValue::from).unwrap();
    let outputs = drain(&mut d, &saved);
    let kinds: Vec<String> = outputs.iter().map(|o| text(o, "kind")).collect();
    let store = kinds.iter().position(|k| k == "store").expect("the membership is stored");
    let connect = kinds.iter().position(|k| k == "connect").expect("then it connects");
    assert!(store < connect, "nothing before the group is durable: {kinds:?}");
    assert_eq!(text(&outputs[connect], "url"), "ws://127.0.0.1:8788/sync");
    assert!(outputs.iter().any(|o| text(o, "type") == "group-ready"));
    assert!(d.in_group());

    let id = d.push(b"offline first", 1001.0, 1_700_000_000_001.0).map_err(JsValue::from).unwrap();
    assert_eq!(id.len(), 32);
    drain(&mut d, &saved);
    assert_eq!(d.unsent(), 1.0);
    assert_eq!(d.status(), "offline", "the connection was never answered: saved locally, offline");

    let again = device(saved);
    assert!(again.in_group(), "the membership was read back");
    assert_eq!(again.unsent(), 1.0, "and the outbox");
}

#[wasm_bindgen_test]
fn qr_codes_and_stored_blobs_decode() {
    assert!(qr_code("0KSYNC:hello").map_err(JsValue::from).unwrap().starts_with("data:image/svg+xml;base64,"));
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&5u64.to_le_bytes());
    bytes.extend_from_slice(&[1; 16]);
    bytes.extend_from_slice(&[2; 32]);
    bytes.extend_from_slice(&3u64.to_le_bytes());
    bytes.extend_from_slice(&77u64.to_le_bytes());
    bytes.extend_from_slice(b"hi");
    let blob = decode_blob(&bytes).map_err(JsValue::from).unwrap();
    assert_eq!(get(&blob, "cursor").as_f64(), Some(5.0));
    assert_eq!(get(&blob, "timestamp").as_f64(), Some(77.0));
    assert_eq!(Uint8Array::new(&get(&blob, "data")).to_vec(), b"hi");
    assert!(decode_blob(&bytes[..10]).is_err());
}
