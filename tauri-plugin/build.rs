const COMMANDS: &[&str] = &[
    "sync_enable",
    "sync_disable",
    "sync_create_invite",
    "sync_join_invite",
    "sync_push",
    "sync_pull",
    "sync_status",
    "sync_last_cursor",
    "sync_now",
];

fn main() {
    tauri_plugin::Builder::new(COMMANDS).build();
}
