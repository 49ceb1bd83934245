//! # zerok-transport-iroh
//!
//! The native driver of 0k-sync: it runs the sans-IO core ([`zerok_core`]) over iroh QUIC
//! connections (ALPN `0k-sync/1`, one bi-stream per connection carrying the record stream) and
//! executes its store effects durably on SQLite, for devices ([`SyncClient`]) and for the relay
//! ([`RelayServer`]).
#![forbid(unsafe_code)]

mod admission;
mod clock;
mod device_store;
mod http;
mod metrics;
pub mod net;
mod relay_server;
mod relay_store;
mod sql;
mod sync_client;

pub use admission::{HostLimits, source_of};
pub use clock::{Clock, os_seed};
pub use device_store::DeviceDb;
pub use metrics::Metrics;
pub use relay_server::{RelayError, RelayServer, RelayServerConfig};
pub use relay_store::{Batch, RelayDb};
pub use sync_client::{ClientError, ClientOptions, DeviceSnapshot, Invite, SyncClient};
pub use zerok_core::connection;
