//! Reports: what a user must hear of (the relay misbehaved, history is missing or was pruned),
//! printed as one line each on stderr while a command runs and appended to `reports.log` in the
//! data dir (which `zerok status` shows). A command that saw the relay misbehave or data go
//! missing ([`ClientEvent::needs_attention`]) ends with exit status 3.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use zerok_core::client::ClientEvent;
use zerok_transport_iroh::SyncClient;

use crate::Failure;

/// The exit status of a command that did what it was asked but saw a report.
pub const EXIT_REPORTED: u8 = 3;

/// The reports of one command.
pub struct Reports {
    shown: Arc<Shown>,
    /// A second subscription, to show at the end what the printer had no time for.
    backlog: broadcast::Receiver<ClientEvent>,
    task: tokio::task::JoinHandle<()>,
}

struct Shown {
    log: PathBuf,
    /// Events handled (shown or not), in order.
    handled: AtomicUsize,
    /// Reports among them that need attention.
    reports: AtomicUsize,
}

impl Shown {
    fn handle(&self, event: &ClientEvent) {
        if let Some((kind, message)) = event.background_error() {
            let line = format!("report: {kind}: {message}");
            if event.needs_attention() {
                self.reports.fetch_add(1, Ordering::SeqCst);
            }
            if event.is_report() {
                append(&self.log, &line);
            }
            eprintln!("{line}");
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

/// The log of reports in a data dir.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("reports.log")
}

impl Reports {
    /// Starts listening to `client`'s events (before anything that may report runs).
    pub fn watch(client: &SyncClient, data_dir: &Path) -> Self {
        let mut events = client.subscribe();
        let backlog = client.subscribe();
        let shown =
            Arc::new(Shown { log: log_path(data_dir), handled: AtomicUsize::new(0), reports: AtomicUsize::new(0) });
        let printer = shown.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => printer.handle(&event),
                    Err(RecvError::Lagged(n)) => eprintln!("report: {n} events were not shown (too many at once)"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Reports { shown, backlog, task }
    }

    /// Ends listening, after showing every event sent so far; a command that saw a report
    /// fails with [`EXIT_REPORTED`].
    pub async fn finish(mut self) -> Result<(), Failure> {
        self.task.abort();
        let _ = (&mut self.task).await;
        // The printer handles each event it received before its next wait, so exactly the
        // first `handled` events of the backlog were shown.
        let mut skip = self.shown.handled.load(Ordering::SeqCst);
        while let Ok(event) = self.backlog.try_recv() {
            match skip {
                0 => self.shown.handle(&event),
                _ => skip -= 1,
            }
        }
        match self.shown.reports.load(Ordering::SeqCst) {
            0 => Ok(()),
            n => Err(Failure::reported(n)),
        }
    }
}

fn append(log: &Path, line: &str) {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{stamp}\t{line}");
    }
}

/// The last `n` reports logged in `data_dir`, oldest first, as (unix seconds, line).
pub fn recent(data_dir: &Path, n: usize) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(log_path(data_dir)).unwrap_or_default();
    let all: Vec<(u64, String)> =
        text.lines().filter_map(|l| l.split_once('\t')).map(|(t, l)| (t.parse().unwrap_or(0), l.to_owned())).collect();
    all.into_iter().rev().take(n).collect::<Vec<_>>().into_iter().rev().collect()
}
