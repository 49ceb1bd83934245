//! End to end over real iroh on loopback: a relay with its SQLite store, and devices with theirs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, reason = "tests")]

use std::time::Duration;

use zerok_core::client::{ClientEvent, SyncStatus};
use zerok_core::relay::RelayLimits;
use zerok_relay::{RelayServer, RelayServerConfig};
use zerok_transport_iroh::{ClientOptions, SyncClient};

const WAIT: Duration = Duration::from_secs(20);

async fn relay(dir: &std::path::Path) -> RelayServer {
    let config = RelayServerConfig::new(dir.join("relay"), "127.0.0.1:0".parse().unwrap());
    RelayServer::start(config).await.expect("relay starts")
}

async fn device(dir: &std::path::Path, name: &str, relay: &RelayServer) -> SyncClient {
    let options = ClientOptions::new(dir.join(name), relay.info().clone(), "127.0.0.1:0".parse().unwrap());
    SyncClient::open(options).await.expect("device opens")
}

/// Polls the device's received blobs until it holds at least `n` (all of them are returned).
async fn pull_at_least(client: &SyncClient, n: usize, within: Duration) -> Vec<zerok_core::client::ReceivedBlob> {
    tokio::time::timeout(within, async {
        loop {
            let got = client.pull(0, 2 * n + 10).await.unwrap();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("fewer than {n} blobs arrived"))
}

async fn blob_available(events: &mut tokio::sync::broadcast::Receiver<ClientEvent>) -> u64 {
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await.expect("a blob arrives") {
            Ok(ClientEvent::BlobAvailable { cursor, .. }) => return cursor,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_pair_by_short_code_and_sync_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let alice = device(dir.path(), "alice", &relay).await;
    let bob = device(dir.path(), "bob", &relay).await;

    alice.create_group(None, WAIT).await.expect("group created");
    let invite = alice.create_invite(WAIT).await.expect("invite");
    assert_eq!(invite.short_code.len(), 19);
    assert!(invite.qr_text.starts_with("0KSYNC:"));
    let code = bob.join_invite(&invite.short_code, WAIT).await.expect("bob joins");
    assert_eq!(code.len(), 6);

    let mut bob_events = bob.subscribe();
    let id = alice.push(b"buy milk".to_vec()).await.unwrap();
    let cursor = blob_available(&mut bob_events).await;
    let got = bob.pull(cursor - 1, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].push_id, got[0].payload.as_slice()), (id, b"buy milk".as_slice()));

    let mut alice_events = alice.subscribe();
    bob.push(b"and bread".to_vec()).await.unwrap();
    let cursor = blob_available(&mut alice_events).await;
    assert_eq!(alice.pull(cursor - 1, 10).await.unwrap()[0].payload, b"and bread");
    alice.wait_synced(WAIT).await.unwrap();
    bob.wait_synced(WAIT).await.unwrap();
    assert_eq!(alice.status(), SyncStatus::Synced);
    assert_eq!(alice.last_cursor().await.unwrap(), 2, "alice has received everything up to bob's blob");

    alice.close(Duration::from_millis(500)).await;
    bob.close(Duration::from_millis(500)).await;
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restart_keeps_identity_and_data_and_an_offline_push_syncs_later() {
    let dir = tempfile::tempdir().unwrap();
    let first = relay(dir.path()).await;
    let info = first.info().clone();
    let alice = device(dir.path(), "alice", &first).await;
    let bob = device(dir.path(), "bob", &first).await;
    alice.create_group(None, WAIT).await.unwrap();
    let invite = alice.create_invite(WAIT).await.unwrap();
    bob.join_invite(&invite.qr_text, WAIT).await.expect("bob joins by QR payload");
    alice.push(b"before".to_vec()).await.unwrap();
    alice.wait_synced(WAIT).await.unwrap();
    first.shutdown().await.unwrap();

    // Offline: the push lands in the outbox and reports pending.
    alice.push(b"while the relay is down".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_ne!(alice.status(), SyncStatus::Synced);

    // Same data dir: same identity; bind where it was so devices find it again.
    let config = RelayServerConfig::new(dir.path().join("relay"), info.addrs[0].parse().unwrap());
    let second = RelayServer::start(config).await.expect("relay restarts");
    assert_eq!(second.info().endpoint_id, info.endpoint_id);
    assert_eq!(second.info().noise_key, info.noise_key);
    alice.command(zerok_core::client::Command::SyncNow).await.unwrap();
    bob.command(zerok_core::client::Command::SyncNow).await.unwrap();
    let got = pull_at_least(&bob, 2, WAIT).await;
    assert_eq!(got.len(), 2, "bob has both blobs, once");
    assert_eq!(got[1].payload, b"while the relay is down");
    alice.close(Duration::from_millis(500)).await;
    bob.close(Duration::from_millis(500)).await;
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_codes_kill_the_invite() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let alice = device(dir.path(), "alice", &relay).await;
    let mallory = device(dir.path(), "mallory", &relay).await;
    alice.create_group(None, WAIT).await.unwrap();
    let invite = alice.create_invite(WAIT).await.unwrap();
    let real = zerok_core::invite::ShortCode::parse(&invite.short_code).unwrap();
    // Each wrong attempt is told so, the third one included; then the invite is gone.
    for guess in 1..=3u64 {
        let wrong = zerok_core::invite::ShortCode::from_parts(real.slot(), guess).unwrap().display();
        let err = mallory.join_invite(&wrong, WAIT).await.expect_err("a wrong code never joins");
        assert!(
            matches!(err, zerok_transport_iroh::ClientError::Pairing(zerok_core::client::PairingFailure::WrongCode)),
            "{err}"
        );
    }
    // The relay answers a dead invite as it answers a wrong code: a scan learns nothing.
    let err = mallory.join_invite(&invite.short_code, WAIT).await.expect_err("the invite is dead");
    assert!(
        matches!(err, zerok_transport_iroh::ClientError::Pairing(zerok_core::client::PairingFailure::WrongCode)),
        "{err}"
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invite_is_refused_by_code_and_by_qr() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let mut options =
        ClientOptions::new(dir.path().join("alice"), relay.info().clone(), "127.0.0.1:0".parse().unwrap());
    options.invite_ttl = Duration::from_millis(800);
    let alice = SyncClient::open(options).await.unwrap();
    let bob = device(dir.path(), "bob", &relay).await;
    alice.create_group(None, WAIT).await.unwrap();
    let invite = alice.create_invite(WAIT).await.unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(invite.expires_at_ms <= now_ms + 800, "the invite carries its expiry");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // The relay no longer holds the short code's slot and answers it as a wrong code; the QR
    // payload carries its expiry, so the joiner refuses it without asking.
    let err = bob.join_invite(&invite.short_code, WAIT).await.expect_err("an expired code never joins");
    assert!(
        matches!(err, zerok_transport_iroh::ClientError::Pairing(zerok_core::client::PairingFailure::WrongCode)),
        "{err}"
    );
    let err = bob.join_invite(&invite.qr_text, WAIT).await.expect_err("an expired QR never joins");
    assert_eq!(err.to_string(), "invite: the invite has expired");
    // A fresh invite still works.
    let invite = alice.create_invite(WAIT).await.unwrap();
    bob.join_invite(&invite.short_code, WAIT).await.expect("a fresh invite joins");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_all_1000_blobs_and_an_offline_device_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path()).await;
    let alice = device(dir.path(), "alice", &relay).await;
    let bob = device(dir.path(), "bob", &relay).await;
    alice.create_group(None, WAIT).await.unwrap();
    let invite = alice.create_invite(WAIT).await.unwrap();
    bob.join_invite(&invite.short_code, WAIT).await.unwrap();
    bob.close(Duration::from_millis(100)).await;

    for i in 0..1000u32 {
        alice.push(format!("note {i}").into_bytes()).await.unwrap();
    }
    alice.wait_synced(Duration::from_secs(60)).await.unwrap();
    assert_eq!(alice.last_cursor().await.unwrap(), 0, "alice has nothing from others");

    let invite = alice.create_invite(WAIT).await.unwrap();
    let carol = device(dir.path(), "carol", &relay).await;
    carol.join_invite(&invite.short_code, WAIT).await.unwrap();
    let bob = device(dir.path(), "bob", &relay).await;
    bob.launch().await.unwrap();
    for late in [&carol, &bob] {
        let got = pull_at_least(late, 1000, Duration::from_secs(60)).await;
        assert_eq!(got.len(), 1000);
        assert!(got.windows(2).all(|w| w[0].cursor < w[1].cursor), "in order");
        assert_eq!(got[999].payload, b"note 999");
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_stalled_connections_are_closed_and_devices_are_still_served() {
    use zerok_transport_iroh::{net, os_seed};
    let dir = tempfile::tempdir().unwrap();
    let limits = RelayLimits { handshake_timeout: zerok_core::Duration::from_millis(300), ..RelayLimits::default() };
    let config = RelayServerConfig {
        limits,
        ..RelayServerConfig::new(dir.path().join("relay"), "127.0.0.1:0".parse().unwrap())
    };
    let relay = RelayServer::start(config).await.unwrap();
    let attacker = net::bind(net::SecretKey::from_bytes(&os_seed().unwrap()), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("garbage", vec![0x5a; 300]),
        ("a length prefix far over the pre-auth cap", vec![0xff, 0xff, 1, 2, 3]),
        ("a handshake that never finishes", vec![0x00]),
    ];
    for (what, bytes) in cases {
        let (_conn, mut send, mut recv) =
            net::dial(&attacker, relay.info().endpoint_id, &relay.info().addrs).await.expect("dial");
        send.write_all(&bytes).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 16)).await;
        assert!(closed.is_ok(), "{what}: the relay closes the connection");
    }
    let alice = device(dir.path(), "alice", &relay).await;
    alice.create_group(None, WAIT).await.expect("a real device is still served");
    alice.push(b"still here".to_vec()).await.unwrap();
    alice.wait_synced(WAIT).await.unwrap();
    relay.shutdown().await.unwrap();
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_served_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = RelayServerConfig {
        http: Some("127.0.0.1:0".parse().unwrap()),
        ..RelayServerConfig::new(dir.path().join("relay"), "127.0.0.1:0".parse().unwrap())
    };
    let relay = RelayServer::start(config).await.unwrap();
    let http = relay.http_addr().unwrap();
    assert!(http_get(http, "/health").await.starts_with("HTTP/1.1 200 OK"));
    let alice = device(dir.path(), "alice", &relay).await;
    alice.create_group(None, WAIT).await.unwrap();
    alice.push(vec![1; 100]).await.unwrap();
    alice.wait_synced(WAIT).await.unwrap();
    let metrics = http_get(http, "/metrics").await;
    assert!(metrics.contains("zerok_groups_created_total 1"), "{metrics}");
    assert!(metrics.contains("zerok_blobs_stored_total 1"), "{metrics}");
    assert!(metrics.contains("zerok_connections_open 1"), "{metrics}");
    assert!(metrics.contains("zerok_connections_rejected_total{reason=\"timeout\"} 0"), "{metrics}");
    assert!(http_get(http, "/nope").await.starts_with("HTTP/1.1 404"));
    relay.shutdown().await.unwrap();
}
