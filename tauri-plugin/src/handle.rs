//! [`SyncHandle`]: the plugin's state, one device per app. It opens the device lazily, keeps
//! the status and cursor the synchronous commands answer from, and turns the client's events
//! into `sync://…` events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tauri::{AppHandle, Runtime};
use tokio::sync::Mutex;
use zerok_core::client::{Command, CommandError, SyncStatus};
use zerok_core::invite::qr_svg_data_url;
use zerok_transport_iroh::{ClientError, ClientOptions, DeviceSnapshot, SyncClient};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events;
use crate::models::{Blob, ConnectionStatus, Invite, PullResult, PushResult, SyncNowResult, hex};

/// How long a call waits for the relay (creating a group, opening an invite, joining).
const RELAY_WAIT: Duration = Duration::from_secs(30);
/// How long `push` waits for the relay's acknowledgement before answering "pending".
const ACK_WAIT: Duration = Duration::from_secs(3);
/// How long a manual sync cycle may take.
const SYNC_NOW_WAIT: Duration = Duration::from_secs(60);
/// The flush budget when the app goes to the background or exits.
pub(crate) const FLUSH_BUDGET: Duration = Duration::from_millis(500);
/// Most blobs one `pull` returns.
const PULL_PAGE: usize = 100;
/// A file in the data directory that keeps sync off across launches after `disable()`.
const DISABLED_MARKER: &str = "sync-disabled";

/// The sync plugin's state: reach it with [`crate::SyncExt::sync`].
pub struct SyncHandle<R: Runtime> {
    app: AppHandle<R>,
    settings: Settings,
    client: Mutex<Option<Arc<SyncClient>>>,
    enabled: AtomicBool,
    cache: Arc<Cache>,
}

/// What the synchronous `status()` and `lastCursor()` answer from.
#[derive(Default)]
pub(crate) struct Cache {
    status: AtomicU8,
    cursor: AtomicU64,
}

impl Cache {
    pub fn status(&self) -> ConnectionStatus {
        match self.status.load(Ordering::Relaxed) {
            0 => ConnectionStatus::Offline,
            1 => ConnectionStatus::Synced,
            2 => ConnectionStatus::Pending,
            _ => ConnectionStatus::Failed,
        }
    }

    pub fn set_status(&self, status: SyncStatus) {
        let code = match status {
            SyncStatus::Offline => 0,
            SyncStatus::Synced => 1,
            SyncStatus::Pending => 2,
            SyncStatus::Failed => 3,
        };
        self.status.store(code, Ordering::Relaxed);
    }

    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Relaxed)
    }

    /// Records the cursor; true when it moved.
    pub fn set_cursor(&self, cursor: u64) -> bool {
        self.cursor.swap(cursor, Ordering::Relaxed) != cursor
    }
}

impl<R: Runtime> SyncHandle<R> {
    pub(crate) fn new(app: AppHandle<R>, settings: Settings) -> Self {
        SyncHandle { app, settings, client: Mutex::new(None), enabled: AtomicBool::new(false), cache: Arc::default() }
    }

    /// Where this device's data lives.
    pub fn data_dir(&self) -> &PathBuf {
        &self.settings.data_dir
    }

    /// Starts syncing: connects (when the device is in a group), pushes what is pending and
    /// pulls what is new, in the background. Remembered across launches.
    pub async fn enable(&self) -> Result<()> {
        let client = self.open().await?;
        self.mark_enabled()?;
        client.launch().await?;
        self.refresh(&client).await;
        Ok(())
    }

    /// Stops syncing and closes the connection; pushes still land in the outbox. Remembered
    /// across launches.
    pub async fn disable(&self) -> Result<()> {
        std::fs::create_dir_all(&self.settings.data_dir).map_err(ClientError::from)?;
        std::fs::write(self.settings.data_dir.join(DISABLED_MARKER), b"").map_err(ClientError::from)?;
        self.enabled.store(false, Ordering::Relaxed);
        if let Some(client) = self.opened().await {
            client.command(Command::Disable).await?;
            self.refresh(&client).await;
        }
        Ok(())
    }

    /// Opens an invite for another device (creating the group first on the first device).
    pub async fn create_invite(&self) -> Result<Invite> {
        let client = self.open().await?;
        if !client.snapshot().await?.in_group {
            client.create_group(self.settings.admission_token.clone(), RELAY_WAIT).await?;
            self.mark_enabled()?;
        }
        let invite = client.create_invite(RELAY_WAIT).await?;
        Ok(Invite {
            qr_code: qr_svg_data_url(&invite.qr_text).unwrap_or_default(),
            qr_text: invite.qr_text,
            short_code: invite.short_code,
            expires_at: invite.expires_at_ms,
        })
    }

    /// Joins the group of the device that showed `invite` (a short code or the QR text), and
    /// returns once this device is a member.
    pub async fn join_invite(&self, invite: &str) -> Result<()> {
        let client = self.open().await?;
        client.join_invite(invite, RELAY_WAIT).await?;
        self.mark_enabled()
    }

    /// Seals `data` and puts it in the durable outbox, then waits briefly for the relay.
    /// Succeeds offline too, with `pending: true`.
    pub async fn push(&self, data: Vec<u8>) -> Result<PushResult> {
        if data.is_empty() {
            return Err(Error::EmptyData);
        }
        let client = self.open().await?;
        let (id, cursor) = client.push_and_wait(data, ACK_WAIT).await?;
        Ok(PushResult { blob_id: hex(&id), cursor: cursor.unwrap_or(0), pending: cursor.is_none() })
    }

    /// Blobs received from other devices with a cursor above `after`, oldest first, a page at
    /// a time. Reads the device's store: works offline.
    pub async fn pull(&self, after: u64) -> Result<PullResult> {
        let client = self.open().await?;
        let mut blobs = client.pull(after, PULL_PAGE + 1).await?;
        let has_more = blobs.len() > PULL_PAGE;
        blobs.truncate(PULL_PAGE);
        let max_cursor = blobs.last().map_or(after, |b| b.cursor);
        Ok(PullResult { blobs: blobs.into_iter().map(Blob::from).collect(), has_more, max_cursor })
    }

    /// The indicator, as of the last event.
    pub fn status(&self) -> ConnectionStatus {
        self.cache.status()
    }

    /// Every blob up to this cursor has been received.
    pub fn last_cursor(&self) -> u64 {
        self.cache.cursor()
    }

    /// A full cycle: push everything pending and pull everything new; `sync://progress` reports
    /// on the way. Resolves when a pull has completed and the device is synced, when the relay
    /// cannot be reached, or after a minute, with the status then.
    pub async fn sync_now(&self) -> Result<SyncNowResult> {
        let client = self.open().await?;
        if !client.snapshot().await?.in_group {
            return Err(ClientError::Command(CommandError::NotInGroup).into());
        }
        if !self.enabled.load(Ordering::Relaxed) {
            self.mark_enabled()?;
            client.launch().await?;
        }
        let status = client.sync_now(SYNC_NOW_WAIT).await?;
        let snapshot = self.refresh(&client).await.ok_or(ClientError::Stopped)?;
        Ok(SyncNowResult { status: status.into(), last_cursor: snapshot.cursor, unsent: snapshot.unsent })
    }

    /// App launch: a device that enabled sync before (and did not disable it) reconnects,
    /// pushes what is pending and pulls, in the background.
    pub async fn app_launched(&self) -> Result<()> {
        let dir = &self.settings.data_dir;
        if !self.settings.auto_start || !dir.join("device.db").exists() || dir.join(DISABLED_MARKER).exists() {
            return Ok(());
        }
        self.enable().await
    }

    /// Foreground again: push pending, pull.
    pub async fn app_resumed(&self) -> Result<()> {
        match self.opened().await {
            Some(client) if self.enabled.load(Ordering::Relaxed) => {
                Ok(client.command(Command::Resume).await.map(drop)?)
            }
            _ => Ok(()),
        }
    }

    /// Background (mobile): flush for at most 500 ms, then disconnect. Never waits. The plugin
    /// calls this and the other `app_…` steps on the app's lifecycle events; call them yourself
    /// for signals of your own.
    pub async fn app_paused(&self) -> Result<()> {
        match self.opened().await {
            Some(client) => Ok(client.pause(FLUSH_BUDGET).await?),
            None => Ok(()),
        }
    }

    /// Exit: flush for at most 500 ms and stop. What is not sent stays in the outbox.
    pub async fn app_exiting(&self) {
        let client = self.client.lock().await.take();
        if let Some(client) = client {
            client.close(FLUSH_BUDGET).await;
        }
    }

    async fn opened(&self) -> Option<Arc<SyncClient>> {
        self.client.lock().await.clone()
    }

    async fn open(&self) -> Result<Arc<SyncClient>> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut options = ClientOptions::new(&self.settings.data_dir, self.settings.relay()?, self.settings.bind);
        options.invite_ttl = self.settings.invite_ttl;
        let client = Arc::new(SyncClient::open(options).await?);
        self.refresh(&client).await;
        events::forward(self.app.clone(), &client, self.cache.clone());
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Brings the cached status and cursor up to date; returns the snapshot they came from
    /// (none once the client has stopped).
    async fn refresh(&self, client: &SyncClient) -> Option<DeviceSnapshot> {
        self.cache.set_status(client.status());
        let snapshot = client.snapshot().await.ok()?;
        self.cache.set_cursor(snapshot.cursor);
        Some(snapshot)
    }

    /// Sync is on, now and at the next launches.
    fn mark_enabled(&self) -> Result<()> {
        match std::fs::remove_file(self.settings.data_dir.join(DISABLED_MARKER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(ClientError::from(e).into()),
            _ => {}
        }
        self.enabled.store(true, Ordering::Relaxed);
        Ok(())
    }
}
