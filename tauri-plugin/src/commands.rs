//! The `sync` plugin's commands (`plugin:sync|sync_push`, …). Each is a thin call into
//! [`crate::SyncHandle`].

use tauri::ipc::{InvokeBody, Request};
use tauri::{AppHandle, Runtime, command};

use crate::SyncExt;
use crate::error::{Error, Result};
use crate::models::{ConnectionStatus, Invite, PullResult, PushResult, SyncNowResult};

#[command]
pub(crate) async fn sync_enable<R: Runtime>(app: AppHandle<R>) -> Result<()> {
    app.sync().enable().await
}

#[command]
pub(crate) async fn sync_disable<R: Runtime>(app: AppHandle<R>) -> Result<()> {
    app.sync().disable().await
}

#[command]
pub(crate) async fn sync_create_invite<R: Runtime>(app: AppHandle<R>) -> Result<Invite> {
    app.sync().create_invite().await
}

#[command]
pub(crate) async fn sync_join_invite<R: Runtime>(app: AppHandle<R>, invite: String) -> Result<()> {
    app.sync().join_invite(&invite).await
}

/// The blob comes as the raw request body (what the TypeScript package sends: no JSON
/// encoding of the bytes), or, where the webview's IPC carries only JSON, as an array of bytes
/// or `{ data: number[] }`.
#[command]
pub(crate) async fn sync_push<R: Runtime>(app: AppHandle<R>, request: Request<'_>) -> Result<PushResult> {
    let data = match request.body() {
        InvokeBody::Raw(bytes) => bytes.clone(),
        InvokeBody::Json(json) => bytes_from_json(json)?,
    };
    app.sync().push(data).await
}

fn bytes_from_json(json: &serde_json::Value) -> Result<Vec<u8>> {
    let data = match json {
        serde_json::Value::Array(_) => json,
        _ => json.get("data").ok_or_else(|| Error::BadRequest("missing `data`".into()))?,
    };
    serde_json::from_value::<Vec<u8>>(data.clone())
        .map_err(|_| Error::BadRequest("`data` must be a Uint8Array or an array of bytes".into()))
}

#[command]
pub(crate) async fn sync_pull<R: Runtime>(app: AppHandle<R>, after_cursor: Option<u64>) -> Result<PullResult> {
    app.sync().pull(after_cursor.unwrap_or(0)).await
}

#[command]
pub(crate) fn sync_status<R: Runtime>(app: AppHandle<R>) -> ConnectionStatus {
    app.sync().status()
}

#[command]
pub(crate) fn sync_last_cursor<R: Runtime>(app: AppHandle<R>) -> u64 {
    app.sync().last_cursor()
}

#[command]
pub(crate) async fn sync_now<R: Runtime>(app: AppHandle<R>) -> Result<SyncNowResult> {
    app.sync().sync_now().await
}
