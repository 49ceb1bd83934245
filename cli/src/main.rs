//! `zerok`: the 0k-sync command line.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, reason = "a command line prints")]

mod bench;
mod bench_scale;
mod demo;
mod logging;
mod reports;
mod spinner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};
use tokio::io::AsyncReadExt;
use zerok_core::client::ClientEvent;
use zerok_relay::RelayServer;
use zerok_relay::settings::{RelaySettings, Resolved};
use zerok_transport_iroh::{ClientOptions, SyncClient, connection};

/// Zero-knowledge sync for local-first apps: devices sync through a relay that only ever
/// stores ciphertext.
#[derive(Parser)]
#[command(name = "zerok", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once, at start")]
enum Cmd {
    /// A loopback relay and two devices in temporary directories: pair, push, pull.
    Demo,
    /// End-to-end figures on loopback, next to raw iroh throughput measured in the same run.
    Bench {
        /// Only push COUNT blobs of SIZE bytes from one device, e.g. `1024x50000` (for profiling).
        #[arg(long, value_name = "SIZExCOUNT", value_parser = bench::parse_push)]
        push: Option<(usize, u64)>,
        /// Only compare the push figures of the SQLite store and of the PostgreSQL store at this URL (its tables are created there).
        #[arg(long, value_name = "POSTGRES_URL")]
        store: Option<String>,
    },
    /// Run a relay. Each setting comes from its flag, else its environment variable, else the
    /// `--config` TOML file, else its default.
    Relay {
        /// A TOML file of settings (the names of the flags below, with underscores).
        #[arg(long, env = "ZEROK_RELAY_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: RelaySettings,
    },
    /// Create a sync group on a relay, with this device as its first member.
    Init {
        #[command(flatten)]
        device: DeviceArgs,
        /// The relay's connection string (printed by `zerok relay`).
        #[arg(long)]
        relay: String,
        /// The relay's admission token, if it requires one to create groups.
        #[arg(long, env = "ZEROK_ADMISSION_TOKEN")]
        admission_token: Option<String>,
    },
    /// Invite another device: shows a short code and a QR code, and waits for it.
    Invite {
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Join a group with a short code (XXXX-XXXX-XXXX-XXXX) or QR text.
    Join {
        #[command(flatten)]
        device: DeviceArgs,
        /// The code.
        code: String,
        /// The relay's connection string.
        #[arg(long)]
        relay: String,
    },
    /// Push a file, or standard input with `-`.
    Push {
        #[command(flatten)]
        device: DeviceArgs,
        /// The file (default: standard input).
        #[arg(default_value = "-")]
        file: String,
    },
    /// Print the blobs received from other devices.
    Pull {
        #[command(flatten)]
        device: DeviceArgs,
        /// Only blobs with a cursor above this.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Print blobs as they arrive, until Ctrl-C.
    Watch {
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Show the sync status and cursor.
    Status {
        #[command(flatten)]
        device: DeviceArgs,
    },
}

#[derive(clap::Args)]
struct DeviceArgs {
    /// Where this device keeps its keys, outbox and received blobs.
    #[arg(long, env = "ZEROK_DATA_DIR", default_value = "zerok-device")]
    data_dir: PathBuf,
}

/// A failure, shown as one line, and the exit status it gives (1, or
/// [`reports::EXIT_REPORTED`] for a command that saw reports).
#[derive(Debug)]
pub struct Failure(String, u8);

impl Failure {
    pub fn msg(m: &str) -> Self {
        Failure(m.to_owned(), 1)
    }

    fn reported(n: usize) -> Self {
        let what = if n == 1 { "1 report" } else { &format!("{n} reports") };
        Failure(
            format!("{what} above: the relay misbehaved or data is missing (they stay listed in `zerok status`)"),
            reports::EXIT_REPORTED,
        )
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure(e, code)) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(code)
        }
    }
}

async fn run(command: Cmd) -> Result<(), Failure> {
    match command {
        Cmd::Demo => demo::run().await,
        Cmd::Bench { store: Some(url), .. } => bench::compare_stores(&url).await,
        Cmd::Bench { push, store: None } => bench::run(push).await,
        Cmd::Relay { config, settings } => {
            let file = config.as_deref().map(RelaySettings::from_file).transpose()?.unwrap_or_default();
            relay(settings.over(file).resolve()?).await
        }
        Cmd::Init { device, relay, admission_token } => {
            let client = open_with(&device.data_dir, &relay).await?;
            let reports = reports::Reports::watch(&client, &device.data_dir);
            let spin = spinner::Spinner::start("creating the group on the relay");
            client.create_group(admission_token.map(String::into_bytes), WAIT).await?;
            drop(spin);
            println!("created a sync group; invite other devices with `zerok invite`");
            client.close(Duration::from_millis(500)).await;
            reports.finish().await
        }
        Cmd::Invite { device } => invite(&device.data_dir).await,
        Cmd::Join { device, code, relay } => {
            let client = open_with(&device.data_dir, &relay).await?;
            let reports = reports::Reports::watch(&client, &device.data_dir);
            let spin = spinner::Spinner::start("pairing through the relay");
            let confirmation = client.join_invite(&code, WAIT).await?;
            drop(spin);
            println!("joined; confirmation code {confirmation} (the inviting screen shows the same)");
            client.close(Duration::from_millis(500)).await;
            reports.finish().await
        }
        Cmd::Push { device, file } => push(&device.data_dir, &file).await,
        Cmd::Pull { device, after } => {
            let client = open(&device.data_dir).await?;
            let reports = reports::Reports::watch(&client, &device.data_dir);
            client.launch().await?;
            let spin = spinner::Spinner::start("syncing");
            let synced = client.wait_synced(Duration::from_secs(10)).await;
            drop(spin);
            for blob in client.pull(after, 10_000).await? {
                println!("{}\t{}\t{}", blob.cursor, blob.sender.to_hex(), String::from_utf8_lossy(&blob.payload));
            }
            client.close(Duration::from_millis(500)).await;
            reports.finish().await?;
            synced.map_err(|_| {
                Failure::msg("not synced within 10 s: what is printed may be incomplete (see `zerok status`)")
            })
        }
        Cmd::Watch { device } => watch(&device.data_dir).await,
        Cmd::Status { device } => status(&device.data_dir).await,
    }
}

async fn relay(settings: Resolved) -> Result<(), Failure> {
    logging::init(&settings.log)?;
    let open_to_all = settings.server.limits.admission_token.is_none();
    let public =
        !settings.server.bind.ip().is_loopback() || settings.server.http.is_some_and(|a| !a.ip().is_loopback());
    if public && open_to_all {
        eprintln!(
            "warning: this relay listens beyond loopback and anyone who reaches it may create groups; \
             set an admission token (--admission-token or ZEROK_ADMISSION_TOKEN) unless that is what you want"
        );
    }
    let mut server = RelayServer::start(settings.server).await?;
    let text = connection::format(server.info());
    say(&format!("relay listening on {}", server.info().addrs.join(", ")));
    match (server.http_addr(), server.metrics_addr()) {
        (Some(addr), None) => {
            say(&format!("http on http://{addr}: /health, /metrics, /connection, and ws://{addr}/sync for browsers"))
        }
        (Some(addr), Some(_)) => {
            say(&format!("http on http://{addr}: /health, /connection, and ws://{addr}/sync for browsers"))
        }
        (None, _) => {}
    }
    if let Some(addr) = server.metrics_addr() {
        say(&format!("operator http on http://{addr}: /health, /metrics"));
    }
    say(&format!("connection string: {text}"));
    if std::io::stdout().is_terminal() {
        show_qr(&text);
    }
    tokio::select! {
        stopped = server.wait() => stopped?,
        () = logging::stop_signal() => {
            tracing::info!("stopping: finishing in-flight commits");
            server.shutdown().await?;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// Prints a line; a closed stdout is not worth stopping a relay for.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn invite(data_dir: &Path) -> Result<(), Failure> {
    let client = open(data_dir).await?;
    let reports = reports::Reports::watch(&client, data_dir);
    client.launch().await?;
    let mut events = client.subscribe();
    let invite = client.create_invite(WAIT).await?;
    println!("short code: {}", invite.short_code);
    show_qr(&invite.qr_text);
    println!("the invite expires in 10 minutes");
    let mut spin = Some(spinner::Spinner::start("waiting for the other device"));
    loop {
        match events.recv().await {
            Ok(ClientEvent::PairingConfirmation { code }) => {
                spin = None;
                println!("confirmation code {code}: check the other screen")
            }
            Ok(ClientEvent::InviteClosed) => break,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return Err(Failure::msg("the device stopped")),
        }
    }
    drop(spin);
    println!("invite closed");
    client.close(Duration::from_millis(500)).await;
    reports.finish().await
}

async fn push(data_dir: &Path, file: &str) -> Result<(), Failure> {
    let data = if file == "-" {
        let mut buf = Vec::new();
        tokio::io::stdin().read_to_end(&mut buf).await?;
        buf
    } else {
        std::fs::read(file)?
    };
    let client = open(data_dir).await?;
    let reports = reports::Reports::watch(&client, data_dir);
    let mut events = client.subscribe();
    client.launch().await?;
    let id = client.push(data).await?;
    let spin = spinner::Spinner::start("sending to the relay");
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(ClientEvent::PushAcked { push_id, cursor }) if push_id == id => return Some(cursor),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await;
    drop(spin);
    match acked {
        Ok(Some(cursor)) => println!("pushed, stored by the relay at cursor {cursor}"),
        _ => println!("queued on this device; it syncs when the relay is reachable"),
    }
    client.close(Duration::from_millis(500)).await;
    reports.finish().await
}

async fn watch(data_dir: &Path) -> Result<(), Failure> {
    let client = open(data_dir).await?;
    let reports = reports::Reports::watch(&client, data_dir);
    let mut events = client.subscribe();
    // Only what arrives from now on, in arrival order (a cursor can name an older blob after
    // a relay rollback).
    let mut shown = client.arrivals(0, usize::MAX).await?.last().map_or(0, |(row, _)| *row);
    client.launch().await?;
    println!("watching; Ctrl-C to stop");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            e = events.recv() => match e {
                Ok(ClientEvent::BlobAvailable { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for (row, blob) in client.arrivals(shown, 1_000).await? {
                        shown = row;
                        println!("{}\t{}\t{}", blob.cursor, blob.sender.to_hex(), String::from_utf8_lossy(&blob.payload));
                    }
                }
                Ok(ClientEvent::Status(s)) => println!("status {s:?}"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    client.close(Duration::from_millis(500)).await;
    reports.finish().await
}

/// The status from what the device saved, after a short sync: cursor, what it waits for, and
/// the reports of its recent commands.
async fn status(data_dir: &Path) -> Result<(), Failure> {
    let client = open(data_dir).await?;
    let reports = reports::Reports::watch(&client, data_dir);
    client.launch().await?;
    let spin = spinner::Spinner::start("syncing");
    let _ = client.wait_synced(Duration::from_secs(5)).await;
    drop(spin);
    let snap = client.snapshot().await?;
    let status = client.status();
    client.close(Duration::from_millis(500)).await;
    let seen = reports.finish().await;
    println!("status {status:?}, cursor {} (saved), relay head {}", snap.cursor, snap.receiving.head);
    if snap.unsent > 0 {
        println!("waiting to send: {} blob(s) not yet stored by the relay", snap.unsent);
    }
    for (sender, seq) in &snap.receiving.missing {
        println!(
            "waiting for: blob {seq} of device {} ({} later blob(s) of it held back until it arrives)",
            sender.short_hex(),
            snap.receiving.gap_buffered
        );
    }
    let recent = reports::recent(data_dir, 10);
    if !recent.is_empty() {
        println!("reports (most recent last; also in {}):", reports::log_path(data_dir).display());
        for (_, line) in recent {
            println!("  {line}");
        }
    }
    seen
}

/// Opens a device that already knows its relay.
async fn open(data_dir: &Path) -> Result<SyncClient, Failure> {
    let text = std::fs::read_to_string(data_dir.join("relay.txt")).map_err(|_| {
        Failure::msg(&format!("{} is not set up: run `zerok init` or `zerok join` first", data_dir.display()))
    })?;
    open_with(data_dir, &text).await
}

/// Opens a device and remembers its relay.
async fn open_with(data_dir: &Path, relay: &str) -> Result<SyncClient, Failure> {
    let info = connection::parse(relay).map_err(|e| Failure::msg(&e))?;
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(data_dir.join("relay.txt"), relay.trim())?;
    let bind = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    Ok(SyncClient::open(ClientOptions::new(data_dir, info, bind)).await?)
}

/// Prints `text` as a QR code in the terminal.
pub fn show_qr(text: &str) {
    if let Ok(code) = qrcode::QrCode::new(text.as_bytes()) {
        let art = code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build();
        println!("{art}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_flags_set_the_limits() {
        let cli = Cli::try_parse_from([
            "zerok",
            "relay",
            "--push-per-sec",
            "7",
            "--retention-days",
            "0",
            "--retention-all-acked",
            "--admission-token",
            "t0ken",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Cmd::Relay { settings, .. } = cli.command else { panic!("not relay") };
        let limits = settings.resolve().unwrap_or_else(|e| panic!("{}", e.0)).server.limits;
        assert_eq!(limits.push_per_sec, 7);
        assert_eq!(limits.retention_ttl, None);
        assert!(limits.retention_all_acked);
        assert_eq!(limits.admission_token.as_deref(), Some(b"t0ken".as_slice()));
        assert_eq!(limits.max_slot_attempts, zerok_core::relay::RelayLimits::default().max_slot_attempts);
    }
}
