//! # zerok-core
//!
//! The sans-IO protocol core of 0k-sync, a zero-knowledge sync layer for local-first apps.
//! It owns the wire format, the Noise sessions, the end-to-end blob envelope and invites. It
//! never touches a socket, a clock, a file or OS randomness: time comes in as [`Now`] and all
//! randomness flows from one 32-byte seed through [`CoreRng`], so the same inputs always give
//! the same outputs — natively, under the simulator, and in a browser (wasm32).
//!
//! Layers, bottom up:
//! - [`wire`]: length-prefixed records and frames (fixed header, postcard body).
//! - [`noise`]: `Noise_IK` device→relay sessions, `Noise_XXpsk3` pairing, rekeying.
//! - [`envelope`]: XChaCha20-Poly1305 blob envelopes, signed and padded.
//! - [`invite`]: QR invites, short codes, SPAKE2 and the pairing messages.
//! - [`keys`]: key types that zeroize, redact and compare in constant time.
//! - [`log`]: the relay's log commitment (a hash chain over stored blobs) that exposes forks.
//!
//! ```
//! use zerok_core::{CoreRng, keys::*, envelope::*};
//! let mut rng = CoreRng::from_seed([7; 32]);
//! let group = GroupId::random(&mut rng);
//! let cipher = BlobCipher::new(&group, 0, &EpochSecret::random(&mut rng));
//! let me = DeviceSigningKey::generate(&mut rng);
//! let link = ChainLink { seq: 1, prev_hash: [0; 32] };
//! let sealed = cipher.seal(&me, link, BlobKind::Data, b"hello", &mut rng).unwrap();
//! assert_eq!(cipher.open(&sealed.envelope).unwrap().payload, b"hello");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "planted-bugs")]
pub mod bugs;
pub mod client;
pub mod connection;
pub mod crypto;
pub mod envelope;
pub mod http_head;
pub mod invite;
pub mod io;
pub mod keys;
pub mod log;
pub mod noise;
pub mod relay;
mod rng;
mod time;
pub mod wire;

#[doc(hidden)]
pub mod selfcheck;

#[doc(hidden)]
pub mod fuzzing;

pub use rng::CoreRng;
pub use time::{Duration, Instant, Now};
