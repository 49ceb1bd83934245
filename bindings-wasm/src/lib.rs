//! # zerok-wasm
//!
//! The 0k-sync client for browsers: the sans-IO core's client state machine behind
//! wasm-bindgen. This module does no IO: `js/zerok-sync.js` drives it with a WebSocket to the
//! relay's `/sync` endpoint, IndexedDB for the device's state and received blobs, and timers,
//! and offers apps the same API as the Tauri plugin's package.
//!
//! Every call takes the time: `mono_ms` from `performance.now()` and `unix_ms` from
//! `Date.now()`. Randomness comes in as a seed from `crypto.getRandomValues()`.
#![forbid(unsafe_code)]

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use zerok_core::client::{Client, ClientConfig, ClientInput, ClientOutput, Command, kv};
use zerok_core::invite::qr_svg_data_url;
use zerok_core::io::{ConnId, OpId, StoreError};
use zerok_core::keys::DeviceSigningKey;
use zerok_core::{Duration, Instant, Now};

mod events;

/// Transport identity of a browser in the Noise prologue: a WebSocket has none (the relay
/// uses the same zero for its WebSocket connections).
const NO_TRANSPORT_ID: [u8; 32] = [0; 32];

/// One device: the core client and nothing else.
#[wasm_bindgen]
pub struct Device {
    client: Client,
}

#[wasm_bindgen]
impl Device {
    /// Opens a device from its stored state records (`[key, Uint8Array]` pairs, as written by
    /// earlier `store` outputs), its 32-byte signing key seed and a 32-byte random seed.
    /// `connection` is the relay's connection string (`zerok1:…@…,ws://…/sync`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        connection: &str,
        device_key: &[u8],
        seed: &[u8],
        records: Array,
        mono_ms: f64,
        unix_ms: f64,
    ) -> Result<Device, JsError> {
        let relay = zerok_core::connection::parse(connection).map_err(|e| JsError::new(&e))?;
        let key: [u8; 32] = device_key.try_into().map_err(|_| JsError::new("the device key must be 32 bytes"))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| JsError::new("the seed must be 32 bytes"))?;
        let mut pairs = Vec::new();
        for record in records.iter() {
            let record = Array::from(&record);
            let key = record.get(0).as_string().ok_or_else(|| JsError::new("a state record's key is not a string"))?;
            pairs.push((key, Uint8Array::new(&record.get(1)).to_vec()));
        }
        let state = kv::load(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        let config = ClientConfig::new(DeviceSigningKey::from_bytes(&key), NO_TRANSPORT_ID, relay);
        Ok(Device { client: Client::new(config, state, seed, now(mono_ms, unix_ms)) })
    }

    /// The next thing to do, as `{ kind, … }`:
    /// `connect { conn, url }`, `send { conn, bytes }`, `close { conn }`,
    /// `store { op, writes: [{ key, value } | { key, delete: true } | { cursor, blob }] }`,
    /// `event { type, … }`, or `idle { at }` (`at`: `performance.now()` time, or null).
    pub fn poll(&mut self) -> JsValue {
        match self.client.poll_output() {
            ClientOutput::Connect { conn, relay } => {
                let url = relay.addrs.iter().find(|a| a.starts_with("ws://") || a.starts_with("wss://")).cloned();
                object(&[("kind", "connect".into()), ("conn", conn_id(conn)), ("url", url.into())])
            }
            ClientOutput::Transmit { conn, bytes } => {
                object(&[("kind", "send".into()), ("conn", conn_id(conn)), ("bytes", bytes_value(&bytes))])
            }
            ClientOutput::Close { conn } => object(&[("kind", "close".into()), ("conn", conn_id(conn))]),
            ClientOutput::Store { op, request } => {
                let writes: Array = kv::writes(&request).iter().map(write_value).collect();
                object(&[("kind", "store".into()), ("op", (op.0 as f64).into()), ("writes", writes.into())])
            }
            ClientOutput::Event(e) => events::event_value(&e),
            ClientOutput::Timeout(at) => {
                let at = at.map_or(JsValue::NULL, |i| ((i.0 / 1000) as f64).into());
                object(&[("kind", "idle".into()), ("at", at)])
            }
        }
    }

    /// The connection asked for is open.
    pub fn connected(&mut self, conn: f64, mono_ms: f64, unix_ms: f64) {
        self.input(ClientInput::Connected { conn: ConnId(conn as u64) }, mono_ms, unix_ms);
    }

    /// Bytes arrived on a connection.
    pub fn received(&mut self, conn: f64, bytes: &[u8], mono_ms: f64, unix_ms: f64) {
        self.input(ClientInput::Received { conn: ConnId(conn as u64), bytes: bytes.to_vec() }, mono_ms, unix_ms);
    }

    /// A connection failed or closed.
    pub fn disconnected(&mut self, conn: f64, mono_ms: f64, unix_ms: f64) {
        self.input(ClientInput::Disconnected { conn: ConnId(conn as u64) }, mono_ms, unix_ms);
    }

    /// The `idle` deadline passed.
    pub fn timeout(&mut self, mono_ms: f64, unix_ms: f64) {
        self.input(ClientInput::Timeout, mono_ms, unix_ms);
    }

    /// A `store` output was applied (`ok`) or failed (nothing of it was written; `full`: the
    /// browser's quota is exhausted).
    #[wasm_bindgen(js_name = storeDone)]
    pub fn store_done(&mut self, op: f64, ok: bool, full: bool, mono_ms: f64, unix_ms: f64) {
        let result = match (ok, full) {
            (true, _) => Ok(()),
            (false, true) => Err(StoreError::Full),
            (false, false) => Err(StoreError::Io),
        };
        self.input(ClientInput::StoreDone { op: OpId(op as u64), result }, mono_ms, unix_ms);
    }

    /// Runs a command: `enable`, `disable`, `createGroup`, `createInvite`, `cancelInvite`,
    /// `syncNow`, `launch`, `resume`, `pause`, `close`. Throws `{ kind, message }` if refused.
    pub fn command(&mut self, name: &str, mono_ms: f64, unix_ms: f64) -> Result<(), JsValue> {
        let flush_for = Duration::from_millis(500);
        let command = match name {
            "enable" => Command::Enable,
            "disable" => Command::Disable,
            "createGroup" => Command::CreateGroup { admission_token: None },
            "createInvite" => Command::CreateInvite,
            "cancelInvite" => Command::CancelInvite,
            "syncNow" => Command::SyncNow,
            "launch" => Command::Launch,
            "resume" => Command::Resume,
            "pause" => Command::Pause { flush_for },
            "close" => Command::Close { flush_for },
            other => return Err(error_value("badRequest", &format!("unknown command {other:?}"))),
        };
        self.run(command, mono_ms, unix_ms).map(|_| ())
    }

    /// Joins a group with a short code or QR text (the outcome comes as events).
    #[wasm_bindgen(js_name = joinInvite)]
    pub fn join_invite(&mut self, code: &str, mono_ms: f64, unix_ms: f64) -> Result<(), JsValue> {
        self.run(Command::JoinInvite(code.to_owned()), mono_ms, unix_ms).map(|_| ())
    }

    /// Seals `data` for the durable outbox; returns the blob id (hex).
    pub fn push(&mut self, data: &[u8], mono_ms: f64, unix_ms: f64) -> Result<String, JsValue> {
        if data.is_empty() {
            return Err(error_value("emptyData", "nothing to push: the data is empty"));
        }
        let id = self.run(Command::Push(data.to_vec()), mono_ms, unix_ms)?;
        Ok(id.map(|id| hex(&id)).unwrap_or_default())
    }

    /// `synced`, `pending`, `failed` or `offline`.
    pub fn status(&self) -> String {
        self.client.status().name().to_owned()
    }

    /// The durable cursor: every blob up to it is in the inbox.
    pub fn cursor(&self) -> f64 {
        self.client.cursor() as f64
    }

    /// Whether the device belongs to a sync group.
    #[wasm_bindgen(js_name = inGroup)]
    pub fn in_group(&self) -> bool {
        self.client.membership().is_some()
    }

    /// This device's id (hex), as other devices see it as a blob's sender.
    #[wasm_bindgen(js_name = deviceId)]
    pub fn device_id(&self) -> String {
        hex(&self.client.device_id().0)
    }

    /// Blobs not yet acknowledged by the relay.
    pub fn unsent(&self) -> f64 {
        self.client.unsent() as f64
    }

    fn input(&mut self, input: ClientInput, mono_ms: f64, unix_ms: f64) {
        self.client.handle_input(now(mono_ms, unix_ms), input);
    }

    fn run(&mut self, command: Command, mono_ms: f64, unix_ms: f64) -> Result<Option<[u8; 16]>, JsValue> {
        self.client.command(now(mono_ms, unix_ms), command).map_err(|e| error_value(e.kind(), &e.to_string()))
    }
}

/// Decodes an inbox record (a `store` write's `blob`) as `{ id, cursor, sender, data, timestamp }`.
#[wasm_bindgen(js_name = decodeBlob)]
pub fn decode_blob(bytes: &[u8]) -> Result<JsValue, JsError> {
    let b = kv::decode_blob(bytes).ok_or_else(|| JsError::new("a stored blob is damaged"))?;
    Ok(object(&[
        ("id", hex(&b.push_id).into()),
        ("cursor", (b.cursor as f64).into()),
        ("sender", hex(&b.sender.0).into()),
        ("data", Uint8Array::from(b.payload.as_slice()).into()),
        ("timestamp", (b.stored_at_ms as f64).into()),
    ]))
}

/// The QR code of an invite's text, as an SVG data URL for `<img src>`.
#[wasm_bindgen(js_name = qrCode)]
pub fn qr_code(text: &str) -> Result<String, JsError> {
    Ok(qr_svg_data_url(text)?)
}

fn now(mono_ms: f64, unix_ms: f64) -> Now {
    Now { mono: Instant((mono_ms.max(0.0) * 1000.0) as u64), unix_ms: unix_ms.max(0.0) as u64 }
}

fn conn_id(conn: ConnId) -> JsValue {
    (conn.0 as f64).into()
}

fn bytes_value(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn write_value(w: &kv::KvWrite) -> JsValue {
    match w {
        kv::KvWrite::Put { key, value } => object(&[("key", key.into()), ("value", bytes_value(value))]),
        kv::KvWrite::Delete { key } => object(&[("key", key.into()), ("delete", true.into())]),
        kv::KvWrite::Inbox { cursor, value } => {
            object(&[("cursor", (*cursor as f64).into()), ("blob", bytes_value(value))])
        }
    }
}

pub(crate) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(name), value);
    }
    o.into()
}

/// The `{ kind, message }` errors of the Tauri plugin's package.
pub(crate) fn error_value(kind: &str, message: &str) -> JsValue {
    object(&[("kind", kind.into()), ("message", message.into())])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}
