//! `zerok demo`: a relay on loopback and two devices in temporary directories. They pair with a
//! short code, push and pull both ways, and the status transitions each went through are shown.

use std::time::Duration;

use tokio::sync::broadcast;
use zerok_core::client::{ClientEvent, SyncStatus};
use zerok_relay::{RelayServer, RelayServerConfig};
use zerok_transport_iroh::{ClientOptions, SyncClient};

use zerok_transport_iroh::connection;

use crate::{Failure, show_qr};

const WAIT: Duration = Duration::from_secs(30);

pub async fn run() -> Result<(), Failure> {
    let dir = tempfile::tempdir()?;
    let relay = RelayServer::start(RelayServerConfig::new(
        dir.path().join("relay"),
        "127.0.0.1:0".parse().map_err(|_| Failure::msg("bad bind address"))?,
    ))
    .await?;
    println!("relay     listening on {} (loopback only)", relay.info().addrs.join(", "));
    println!("          {}", connection::format(relay.info()));

    let open = |name: &str| {
        ClientOptions::new(dir.path().join(name), relay.info().clone(), std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let alice = SyncClient::open(open("alice")).await?;
    let bob = SyncClient::open(open("bob")).await?;
    let alice_statuses = record_statuses(alice.subscribe());
    let bob_statuses = record_statuses(bob.subscribe());
    let mut alice_events = alice.subscribe();

    alice.create_group(None, WAIT).await?;
    println!("alice     created a sync group");
    let invite = alice.create_invite(WAIT).await?;
    println!("alice     invite code {}  (or scan:)", invite.short_code);
    show_qr(&invite.qr_text);
    println!("bob       types {} ...", invite.short_code);
    let bob_code = bob.join_invite(&invite.short_code, WAIT).await?;
    let alice_code = confirmation(&mut alice_events).await;
    println!("alice     confirmation code {alice_code}");
    println!(
        "bob       confirmation code {bob_code}  {}",
        if alice_code == bob_code { "(match)" } else { "(MISMATCH)" }
    );

    let mut bob_events = bob.subscribe();
    alice.push(b"buy milk".to_vec()).await?;
    println!("alice     pushed \"buy milk\" (sealed on the device; the relay stores ciphertext)");
    show_arrival("bob", &bob, &mut bob_events).await?;
    let mut alice_events = alice.subscribe();
    bob.push(b"and bread".to_vec()).await?;
    println!("bob       pushed \"and bread\"");
    show_arrival("alice", &alice, &mut alice_events).await?;
    alice.wait_synced(WAIT).await?;
    bob.wait_synced(WAIT).await?;

    alice.close(Duration::from_millis(500)).await;
    bob.close(Duration::from_millis(500)).await;
    relay.shutdown().await?;
    println!("status    alice: {}", transitions(&alice_statuses));
    println!("status    bob:   {}", transitions(&bob_statuses));
    println!("done      two devices paired and synced through a relay that never saw plaintext");
    Ok(())
}

type Statuses = std::sync::Arc<std::sync::Mutex<Vec<SyncStatus>>>;

fn record_statuses(mut events: broadcast::Receiver<ClientEvent>) -> Statuses {
    let seen = Statuses::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let (ClientEvent::Status(s), Ok(mut log)) = (e, log.lock()) {
                log.push(s);
            }
        }
    });
    seen
}

fn transitions(statuses: &Statuses) -> String {
    let icon = |s: &SyncStatus| match s {
        SyncStatus::Synced => "synced ☁️✓",
        SyncStatus::Pending => "pending ☁️⏳",
        SyncStatus::Failed => "failed ☁️✗",
        SyncStatus::Offline => "offline 📴",
    };
    statuses.lock().map(|s| s.iter().map(icon).collect::<Vec<_>>().join(" → ")).unwrap_or_default()
}

async fn confirmation(events: &mut broadcast::Receiver<ClientEvent>) -> String {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ClientEvent::PairingConfirmation { code }) => return code,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return String::from("?"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| String::from("?"))
}

/// Waits for the next blob-available event and prints the blob it announces.
async fn show_arrival(
    name: &str,
    client: &SyncClient,
    events: &mut broadcast::Receiver<ClientEvent>,
) -> Result<(), Failure> {
    let cursor = blob_available(events).await?;
    for blob in client.pull(cursor.saturating_sub(1), 10).await? {
        println!("{name:<9} blob-available at cursor {}: \"{}\"", blob.cursor, String::from_utf8_lossy(&blob.payload));
    }
    Ok(())
}

async fn blob_available(events: &mut broadcast::Receiver<ClientEvent>) -> Result<u64, Failure> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ClientEvent::BlobAvailable { cursor, .. }) => return Ok(cursor),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(Failure::msg("the device stopped")),
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.map_err(|_| Failure::msg("no blob arrived within 30 s"))?
}
