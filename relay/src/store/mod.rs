//! Where the relay keeps groups, keys, blobs and acknowledgements: the embedded SQLite store
//! (the default).

mod sqlite;

pub use sqlite::{Batch, RelayDb};
