//! # zerok-transport-mock
//!
//! A deterministic simulator for 0k-sync. It drives the same sans-IO [`zerok_core`] client and
//! relay state machines that run over iroh in production, but over a simulated network (byte
//! streams split at random points, latency and jitter, cuts at any byte, partitions) and
//! simulated stores (operations durable only once complete; a crash loses the rest; full
//! disks), on a virtual clock, all from one seed. The same seed replays the same run, byte for
//! byte; [`World::trace_hash`] proves it.
//!
//! [`scenario::run`] plays a whole seeded run — set-up, pairing, a fault phase with invariants
//! checked after every step, a heal phase that must converge — and returns the broken
//! invariant with its seed if anything went wrong.
#![forbid(unsafe_code)]
#![allow(
    clippy::indexing_slicing,
    reason = "the simulator indexes its own tables of nodes and links, never network input"
)]

pub mod adversary;
pub mod check;
pub mod scenario;
pub mod stores;
mod world;

pub use world::{Device, EPOCH_MS, NetConfig, Observer, RelayNode, World};
