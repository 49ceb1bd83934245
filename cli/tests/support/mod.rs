//! Running the `zerok relay` binary from tests.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zerok_core::client::RelayInfo;

/// A relay process, killed (SIGKILL) when dropped, also when a test fails.
pub struct RelayProcess(pub Child);

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `zerok relay` with `args` and returns it with its connection string, once printed.
pub fn start_relay(dir: &std::path::Path, args: &[&str]) -> (RelayProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .arg("relay")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("relay starts");
    let stdout = child.stdout.take().expect("stdout");
    let relay = RelayProcess(child);
    // Keep reading: the relay prints more (a QR code) after the connection string.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(s) = line.strip_prefix("connection string: ") {
                let _ = tx.send(s.to_owned());
            }
        }
    });
    let conn = rx.recv_timeout(Duration::from_secs(30)).expect("the relay prints its connection string");
    (relay, conn)
}

/// A schema of its own on the test PostgreSQL (`ZEROK_TEST_PG`), dropped at the end; `None`
/// without a server, a failure without one when `ZEROK_REQUIRE_PG` is set (CI).
pub struct TestDatabase {
    admin: String,
    /// What `zerok relay --store` takes: the server, with this schema as the search path.
    pub url: String,
    schema: String,
}

impl TestDatabase {
    pub fn new() -> Option<Self> {
        let Ok(admin) = std::env::var("ZEROK_TEST_PG") else {
            assert!(std::env::var_os("ZEROK_REQUIRE_PG").is_none(), "ZEROK_REQUIRE_PG is set but ZEROK_TEST_PG is not");
            return None;
        };
        let schema = format!("cli{}_{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().as_micros());
        let out = Command::new("psql").arg(&admin).args(["-qc", &format!("CREATE SCHEMA {schema}")]).output().unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{schema}");
        Some(TestDatabase { admin, url, schema })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-qc", &format!("DROP SCHEMA {} CASCADE", self.schema)])
            .output();
    }
}

/// What `device` holds once it holds at least `n` blobs, within `within` (else `None`).
pub async fn pull_at_least(
    device: &zerok_transport_iroh::SyncClient,
    n: usize,
    within: Duration,
) -> Option<Vec<zerok_core::client::ReceivedBlob>> {
    let wait = async {
        loop {
            let got = device.pull(0, 1 << 20).await.unwrap();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(within, wait).await.ok()
}

/// The relay a connection string names.
pub fn relay_info(conn: &str) -> RelayInfo {
    zerok_core::connection::parse(conn).expect("a connection string")
}

/// A UDP port free on loopback now (for a relay restarted on the same address).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// A TCP port free on loopback now (for a relay's HTTP address).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// A process's resident memory, KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a figure in KiB")
}

/// A connection to the relay that speaks the protocol by hand, as an attacker would.
pub struct Speaker {
    _conn: zerok_transport_iroh::net::Connection,
    pub send: zerok_transport_iroh::net::SendStream,
    pub recv: zerok_transport_iroh::net::RecvStream,
    pub channel: zerok_core::noise::Channel,
    out: Vec<u8>,
}

/// An endpoint bound on `ip` (any of 127.0.0.0/8 is loopback: attackers come from 127.0.0.2,
/// the legitimate device from 127.0.0.1).
pub async fn endpoint_on(ip: &str) -> zerok_transport_iroh::net::Endpoint {
    use zerok_transport_iroh::{net, os_seed};
    net::bind(net::SecretKey::from_bytes(&os_seed().unwrap()), format!("{ip}:0").parse().unwrap(), false).await.unwrap()
}

/// Dials the relay from `endpoint`, runs the IK handshake with `key` for `group` and `intent`,
/// and says Hello; `None` if the relay closes the connection first.
pub async fn speak(
    endpoint: &zerok_transport_iroh::net::Endpoint,
    info: &RelayInfo,
    key: &zerok_core::keys::NoiseKeypair,
    group: &zerok_core::keys::GroupId,
    intent: zerok_core::noise::Intent,
) -> Option<Speaker> {
    use zerok_core::noise::{Channel, ClientAuth, IkInitiator, ik_prologue};
    use zerok_core::wire::{Frame, Hello, MAX_RECORD_LEN, RecordReader, encode_record};
    let (conn, mut send, mut recv) =
        zerok_transport_iroh::net::dial(endpoint, info.endpoint_id, &info.addrs).await.ok()?;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let auth = ClientAuth::new(group, now_ms, intent);
    let prologue = ik_prologue(endpoint.id().as_bytes(), &info.endpoint_id);
    let mut rng = zerok_core::CoreRng::from_seed(zerok_transport_iroh::os_seed().unwrap());
    let (init, m1) = IkInitiator::start(&mut rng, key, &info.noise_key, &prologue, &auth).unwrap();
    let mut bytes = Vec::new();
    encode_record(&m1, &mut bytes).unwrap();
    send.write_all(&bytes).await.ok()?;
    let mut reader = RecordReader::new(MAX_RECORD_LEN);
    let m2 = loop {
        if let Some(record) = reader.next_record().ok()? {
            break record;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), recv.read_chunk(4096)).await.ok()?.ok()??;
        reader.push(&chunk);
    };
    let channel = Channel::new(init.finish(&m2).ok()?, &reader.take_buffered());
    let mut speaker = Speaker { _conn: conn, send, recv, channel, out: Vec::new() };
    speaker.queue(&Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 0 }));
    speaker.flush().await.then_some(speaker)
}

impl Speaker {
    /// Adds a frame to what the next flush writes.
    pub fn queue(&mut self, frame: &zerok_core::wire::Frame) {
        self.channel.send(frame, &mut self.out).unwrap();
    }

    /// Writes what is queued; false once the relay has closed the connection.
    pub async fn flush(&mut self) -> bool {
        let written = tokio::time::timeout(Duration::from_secs(10), self.send.write_all(&self.out)).await;
        self.out.clear();
        matches!(written, Ok(Ok(())))
    }

    /// The next frame from the relay, waiting up to `wait`; `None` on a close or the timeout.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<zerok_core::wire::Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.channel.next_frame().ok()? {
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.recv.read_chunk(1 << 16)).await.ok()?.ok()??;
            self.channel.receive(&chunk);
        }
    }
}
