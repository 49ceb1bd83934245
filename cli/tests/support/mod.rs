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
