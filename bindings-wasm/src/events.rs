//! Core events as the `{ kind: 'event', type, … }` objects the JavaScript driver handles: the
//! Tauri plugin's event names and payloads, plus what the driver itself waits on.

use js_sys::Array;
use wasm_bindgen::JsValue;
use zerok_core::client::ClientEvent;

use crate::{error_value, hex, object};

pub(crate) fn event_value(e: &ClientEvent) -> JsValue {
    let num = |n: u64| JsValue::from(n as f64);
    let (name, mut fields): (&str, Vec<(&str, JsValue)>) = match e {
        ClientEvent::Status(s) => ("status", vec![("status", s.name().into())]),
        ClientEvent::Connected { head } => ("connected", vec![("head", num(*head))]),
        ClientEvent::Disconnected { reason } => ("disconnected", vec![("reason", reason.name().into())]),
        ClientEvent::BlobAvailable { cursor, push_id, sender } => (
            "blob-available",
            vec![("id", hex(push_id).into()), ("cursor", num(*cursor)), ("sender", hex(&sender.0).into())],
        ),
        ClientEvent::PushAcked { push_id, cursor } => {
            ("push-acked", vec![("blobId", hex(push_id).into()), ("cursor", num(*cursor))])
        }
        ClientEvent::PushQueued { push_ids } => {
            let ids: Array = push_ids.iter().map(|id| JsValue::from(hex(id))).collect();
            ("push-queued", vec![("blobIds", ids.into())])
        }
        ClientEvent::SyncProgress { unsent, cursor, head } => {
            ("progress", vec![("unsent", num(*unsent as u64)), ("cursor", num(*cursor)), ("head", num(*head))])
        }
        ClientEvent::GroupReady => ("group-ready", Vec::new()),
        ClientEvent::InviteReady { short_code, qr_text, expires_at_ms } => (
            "invite-ready",
            vec![("shortCode", short_code.into()), ("qrText", qr_text.into()), ("expiresAt", num(*expires_at_ms))],
        ),
        ClientEvent::InviteClosed => ("invite-closed", Vec::new()),
        ClientEvent::PairingConfirmation { code } => ("pairing-code", vec![("code", code.into())]),
        ClientEvent::DeviceAdded { device } => ("device-added", vec![("device", hex(&device.0).into())]),
        ClientEvent::PairingFailed { reason } => {
            ("pairing-failed", vec![("error", error_value(reason.kind(), reason.message()))])
        }
        other => match other.background_error() {
            Some((kind, message)) => ("error", vec![("error", error_value(kind, &message))]),
            None => ("other", Vec::new()),
        },
    };
    if let ClientEvent::PushFailed { push_id, .. } = e {
        fields.push(("blobId", hex(push_id).into()));
    }
    fields.push(("kind", "event".into()));
    fields.push(("type", name.into()));
    object(&fields)
}
