//! The hooks of the CI smoke test (`tests/smoke.rs`): with `ZEROK_SMOKE_JOIN` set, the page
//! joins that invite through its own UI, adds a note, waits for a note from the other device,
//! and reports what it shows; the app then exits (after `ZEROK_SMOKE_HOLD_MS`, for a screenshot).

use std::io::Write as _;
use std::time::Duration;

use tauri::AppHandle;

/// The invite code the page should join, if this run is a smoke test.
#[tauri::command]
pub fn smoke_plan() -> Option<String> {
    std::env::var("ZEROK_SMOKE_JOIN").ok()
}

/// Prints the page's report on one line and exits.
#[tauri::command]
pub fn smoke_report(app: AppHandle, report: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "SMOKE_REPORT {report}");
    let _ = out.flush();
    let hold = std::env::var("ZEROK_SMOKE_HOLD_MS").ok().and_then(|ms| ms.parse().ok()).unwrap_or(0);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(hold));
        app.exit(0);
    });
}
