//! # zerok-relay
//!
//! The 0k-sync relay as a service: the core relay state machine ([`zerok_core::relay`]) in one
//! task, devices over iroh QUIC ([`zerok_transport_iroh::net`]) and browsers over WebSocket on
//! the HTTP port, the store on its own thread with group commit ([`store`]), admission limits
//! per address, metrics, and the settings of `zerok relay` ([`settings`]).
#![forbid(unsafe_code)]

mod admission;
mod http;
mod metrics;
mod server;
pub mod settings;
pub mod store;

pub use admission::{HostLimits, source_of};
pub use metrics::Metrics;
pub use server::{RelayError, RelayServer, RelayServerConfig};
pub use store::{Batch, PostgresStore, RelayStore, SqliteStore, StoreLocation, StoreOpenError};
