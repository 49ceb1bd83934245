//! zerok-notes: shared notes, local first. The notes live in the app's own file; the `sync`
//! plugin carries them, end-to-end encrypted, to the user's other devices.
//!
//! `ZEROK_RELAY` (a `zerok1:…` connection string) and `ZEROK_DATA_DIR` override the
//! configuration, so two instances can run side by side on one machine.
#![forbid(unsafe_code)]
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod notes;
mod smoke;

use std::path::PathBuf;

use tauri::Manager;

fn main() {
    let data_dir = std::env::var_os("ZEROK_DATA_DIR").map(PathBuf::from);
    let mut sync = tauri_plugin_sync::Builder::new();
    if let Ok(relay) = std::env::var("ZEROK_RELAY") {
        sync = sync.relay(relay);
    }
    if let Some(dir) = &data_dir {
        sync = sync.data_dir(dir.join("sync"));
    }
    let result = tauri::Builder::default()
        .plugin(sync.build())
        .setup(move |app| {
            let dir = match data_dir {
                Some(dir) => dir,
                None => app.path().app_data_dir()?,
            };
            app.manage(notes::Notes::open(dir)?);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            notes::notes_list,
            notes::notes_add,
            notes::notes_merge,
            notes::notes_cursor,
            smoke::smoke_plan,
            smoke::smoke_report,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("zerok-notes: {e}");
        std::process::exit(1);
    }
}
