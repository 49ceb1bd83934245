//! The client's events, as `sync://…` events for the app.

use std::sync::Arc;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::broadcast::error::RecvError;
use zerok_core::client::ClientEvent;
use zerok_transport_iroh::SyncClient;

use crate::handle::Cache;
use crate::models::{BlobInfo, ConnectionInfo, PairingInfo, Progress, PushAcked, StatusInfo, SyncError, hex};

/// Connected and authenticated to the relay: [`ConnectionInfo`].
pub const CONNECTED: &str = "sync://connected";
/// The connection is gone: the reason (`unreachable`, `refused`, `lost`, `local`).
pub const DISCONNECTED: &str = "sync://disconnected";
/// A blob from another device can be pulled: [`BlobInfo`].
pub const BLOB_AVAILABLE: &str = "sync://blob-available";
/// Something went wrong in the background: [`SyncError`].
pub const ERROR: &str = "sync://error";
/// The indicator or the cursor changed: [`StatusInfo`].
pub const STATUS: &str = "sync://status";
/// A pending push reached the relay: [`PushAcked`].
pub const PUSH_ACKED: &str = "sync://push-acked";
/// A sync cycle's progress: [`Progress`].
pub const PROGRESS: &str = "sync://progress";
/// The code both screens show while pairing: [`PairingInfo`] with `code`.
pub const PAIRING_CODE: &str = "sync://pairing-code";
/// This device admitted a new one: [`PairingInfo`] with `device`.
pub const DEVICE_ADDED: &str = "sync://device-added";

/// Forwards `client`'s events to the app until the client is dropped.
pub(crate) fn forward<R: Runtime>(app: AppHandle<R>, client: &Arc<SyncClient>, cache: Arc<Cache>) {
    let mut events = client.subscribe();
    let client = Arc::downgrade(client);
    tauri::async_runtime::spawn(async move {
        loop {
            let received = events.recv().await;
            let Some(client) = client.upgrade() else { return };
            let event = match received {
                Ok(event) => event,
                // Missed some: the status and cursor are re-read below.
                Err(RecvError::Lagged(_)) => ClientEvent::Status(client.status()),
                Err(RecvError::Closed) => return,
            };
            if let ClientEvent::Status(status) = &event {
                cache.set_status(*status);
            }
            let cursor_moved = match &event {
                ClientEvent::Connected { .. }
                | ClientEvent::BlobAvailable { .. }
                | ClientEvent::SyncProgress { .. } => client.last_cursor().await.is_ok_and(|c| cache.set_cursor(c)),
                _ => false,
            };
            if cursor_moved || matches!(event, ClientEvent::Status(_)) {
                emit(&app, STATUS, StatusInfo { status: cache.status(), last_cursor: cache.cursor() });
            }
            announce(&app, event);
        }
    });
}

fn announce<R: Runtime>(app: &AppHandle<R>, event: ClientEvent) {
    match event {
        ClientEvent::Connected { head } => emit(app, CONNECTED, ConnectionInfo { head }),
        ClientEvent::Disconnected { reason } => emit(app, DISCONNECTED, reason.name()),
        ClientEvent::BlobAvailable { cursor, push_id, sender } => {
            emit(app, BLOB_AVAILABLE, BlobInfo { id: hex(&push_id), cursor, sender: hex(&sender.0) });
        }
        ClientEvent::PushAcked { push_id, cursor } => {
            emit(app, PUSH_ACKED, PushAcked { blob_id: hex(&push_id), cursor })
        }
        ClientEvent::SyncProgress { unsent, cursor, head } => emit(app, PROGRESS, Progress { unsent, cursor, head }),
        ClientEvent::PairingConfirmation { code } => {
            emit(app, PAIRING_CODE, PairingInfo { device: None, code: Some(code) })
        }
        ClientEvent::DeviceAdded { device } => {
            emit(app, DEVICE_ADDED, PairingInfo { device: Some(hex(&device.0)), code: None });
        }
        other => {
            if let Some(error) = background_error(&other) {
                emit(app, ERROR, error);
            }
        }
    }
}

fn background_error(event: &ClientEvent) -> Option<SyncError> {
    event.background_error().map(|(kind, message)| SyncError { kind: kind.to_owned(), message })
}

fn emit<R: Runtime, T: Serialize + Clone>(app: &AppHandle<R>, event: &str, payload: T) {
    // Nobody listening is not an error; a closed app is not either.
    let _ = app.emit(event, payload);
}
