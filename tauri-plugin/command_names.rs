/// The plugin's commands, for the permission files (`build.rs`) and the tests' ACL.
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
