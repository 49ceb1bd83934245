//! The README's main job, run as a user would: `zerok demo` pairs two devices through a real
//! loopback relay and syncs both ways.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[test]
fn zerok_demo_pairs_two_devices_and_syncs_both_ways() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerok")).arg("demo").output().expect("zerok runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("(match)"), "both screens show one confirmation code:\n{text}");
    assert!(text.contains("bob       blob-available at cursor 1: \"buy milk\""), "{text}");
    assert!(text.contains("alice     blob-available at cursor 2: \"and bread\""), "{text}");
    assert!(text.contains("synced ☁️✓"), "{text}");
}

#[test]
fn errors_are_one_clear_line_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["join", "--relay", "zerok1:nonsense", "ABCD-EFGH-JKMN-PQRS", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("zerok runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: not a relay connection string"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zerok"))
        .args(["pull", "--data-dir"])
        .arg(dir.path().join("nowhere"))
        .output()
        .expect("zerok runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `zerok init` or `zerok join` first"));
}
