//! `zerok relay` as an operator runs it: settings from a TOML file under flags, logs on stderr,
//! a clean stop on SIGTERM, and a bad file refused in one line.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;
use support::free_tcp_port;

#[test]
fn settings_come_from_the_file_under_the_flags_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_tcp_port();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nbind = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:{http_port}\"\nlog = \"info\"\npush_per_sec = 5\n",
            dir.path().join("from-file").display().to_string()
        ),
    )
    .unwrap();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["relay", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("from-flag"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(relay.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("connection string: ") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the relay stopped before printing its connection string");
    }
    assert!(dir.path().join("from-flag/relay.key").exists(), "the flag's data dir wins over the file's");
    assert!(!dir.path().join("from-file").exists());

    let get = |path: &str| {
        let mut http =
            std::net::TcpStream::connect(("127.0.0.1", http_port)).expect("the file's http address is served");
        http.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
        let mut answer = String::new();
        http.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = get("/health");
    assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{answer}");
    // Other sites' pages may read the connection string, not the operator's endpoints.
    assert!(!answer.contains("Access-Control-Allow-Origin"), "{answer}");
    assert!(!get("/metrics").contains("Access-Control-Allow-Origin"));
    assert!(get("/connection").contains("Access-Control-Allow-Origin: *"));

    let kill = Command::new("kill").arg("-TERM").arg(relay.id().to_string()).status().unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = relay.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the relay did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    relay.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("relay started"), "{logs}");
    assert!(logs.contains("stopping: finishing in-flight commits") && logs.contains("stopped"), "{logs}");
}

#[test]
fn a_bad_settings_file_is_one_line_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, "push_per_second = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zerok")).args(["relay", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: config file ") && err.contains("unknown field `push_per_second`"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_zerok")).args(["relay", "--push-per-sec", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: push_per_sec must be at least 1\n");
}

/// Issue 14: a relay reachable beyond loopback that lets anyone create groups says so.
#[test]
fn a_public_relay_without_an_admission_token_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let first_lines = |extra: &[&str], name: &str| {
        let mut relay = Command::new(env!("CARGO_BIN_EXE_zerok"))
            .args(["relay", "--bind", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path().join(name))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(relay.stderr.take().unwrap()).lines().map_while(Result::ok) {
            let started = line.contains("relay started");
            lines.push(line);
            if started || lines.len() > 50 {
                break;
            }
        }
        let _ = relay.kill();
        let _ = relay.wait();
        lines.join("\n")
    };
    let open = first_lines(&[], "open");
    assert!(open.contains("warning: this relay listens beyond loopback"), "{open}");
    let gated = first_lines(&["--admission-token", "s3cret"], "gated");
    assert!(gated.contains("relay started") && !gated.contains("warning:"), "{gated}");
}

/// Issue 14: `/metrics` shared the public listener with `/sync`.
#[test]
fn metrics_can_be_served_on_their_own_address_and_then_not_on_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let (public, operator) = (free_tcp_port(), free_tcp_port());
    let mut relay = Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["relay", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("relay"))
        .args(["--http", &format!("127.0.0.1:{public}"), "--metrics-http", &format!("127.0.0.1:{operator}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(relay.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("connection string:") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the relay stopped before printing its connection string");
    }
    let status = |port: u16, path: &str| {
        let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        http.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
        let mut answer = String::new();
        http.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(status(public, "/metrics"), "404");
    assert_eq!(status(public, "/connection"), "200");
    assert_eq!(status(public, "/health"), "200");
    assert_eq!(status(operator, "/metrics"), "200");
    assert_eq!(status(operator, "/connection"), "404");
    assert_eq!(status(operator, "/health"), "200");
    let _ = relay.kill();
    let _ = relay.wait();
}
