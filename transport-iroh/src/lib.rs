//! # zerok-transport-iroh
//!
//! The native driver of 0k-sync: it runs the sans-IO core ([`zerok_core`]) over iroh QUIC
//! connections (ALPN `0k-sync/1`, one bi-stream per connection carrying the record stream) and
//! executes a device's store effects durably on SQLite ([`SyncClient`]). The relay server
//! built on the same driver is the `zerok-relay` crate.
#![forbid(unsafe_code)]

mod clock;
mod device_store;
pub mod net;
pub mod sql;
mod sync_client;

pub use clock::{Clock, os_seed};
pub use device_store::DeviceDb;
pub use sync_client::{ClientError, ClientOptions, DeviceSnapshot, Invite, SyncClient};
pub use zerok_core::connection;
