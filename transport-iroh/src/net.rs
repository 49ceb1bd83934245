//! iroh endpoints as 0k-sync uses them: our ALPN, no discovery and no public relays unless
//! asked for, and a byte stream over one bi-stream per connection.

use std::net::SocketAddr;

use iroh::endpoint::presets;
pub use iroh::endpoint::{Connection, RecvStream, SendStream};
pub use iroh::{Endpoint, SecretKey};
use iroh::{EndpointAddr, PublicKey, RelayMode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// The ALPN of protocol version 1.
pub const ALPN: &[u8] = b"0k-sync/1";

/// Largest chunk read from a stream at once.
const READ_CHUNK: usize = 64 * 1024;

/// Why the network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The endpoint could not bind.
    #[error("cannot bind the network endpoint: {0}")]
    Bind(String),
    /// The address is not usable.
    #[error("bad address {0:?}")]
    Address(String),
}

/// Binds an endpoint on `bind` only (for example `127.0.0.1:0`), with relays and discovery off:
/// peers are dialled by explicit address. `accept` lists the ALPNs to accept (relays only).
pub async fn bind(secret: SecretKey, bind: SocketAddr, accept: bool) -> Result<Endpoint, NetError> {
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| NetError::Bind(e.to_string()))?;
    if accept {
        builder = builder.alpns(vec![ALPN.to_vec()]);
    }
    builder.bind().await.map_err(|e| NetError::Bind(e.to_string()))
}

/// The socket addresses an endpoint listens on, as strings for a `RelayInfo`.
pub fn listen_addrs(ep: &Endpoint) -> Vec<String> {
    ep.bound_sockets().iter().map(ToString::to_string).collect()
}

/// Dials `endpoint_id` at its socket addresses (others, such as browsers' WebSocket URLs, are
/// skipped) and opens the stream.
pub async fn dial(
    ep: &Endpoint,
    endpoint_id: [u8; 32],
    addrs: &[String],
) -> Result<(Connection, SendStream, RecvStream), String> {
    let id = PublicKey::from_bytes(&endpoint_id).map_err(|e| e.to_string())?;
    let mut addr = EndpointAddr::new(id);
    let sockets: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    if sockets.is_empty() {
        return Err(NetError::Address(addrs.join(",")).to_string());
    }
    for sock in sockets {
        addr = addr.with_ip_addr(sock);
    }
    let conn = ep.connect(addr, ALPN).await.map_err(|e| e.to_string())?;
    let (send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    Ok((conn, send, recv))
}

/// Queued writes smaller than this in all are merged into one.
const COALESCE: usize = 64 * 1024;

/// What a connection's writer does next.
pub enum Write {
    /// Send these bytes.
    Bytes(Vec<u8>),
    /// Finish the stream after what is queued, then close.
    Close,
}

/// The sending side of a connection's write queue; it counts the bytes queued and not yet
/// taken by the connection's writer, so a relay can bound what a peer that does not read costs.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Write>,
    queued: Arc<AtomicUsize>,
}

/// The connection's end of its write queue.
pub struct Writes {
    rx: mpsc::UnboundedReceiver<Write>,
    queued: Arc<AtomicUsize>,
}

/// A new write queue.
pub fn write_queue() -> (Writer, Writes) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (Writer { tx, queued: queued.clone() }, Writes { rx, queued })
}

impl Writer {
    /// Queues `write`; false if the connection is gone.
    pub fn send(&self, write: Write) -> bool {
        if let Write::Bytes(b) = &write {
            self.queued.fetch_add(b.len(), Ordering::Relaxed);
        }
        self.tx.send(write).is_ok()
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Writes {
    /// The next write, waiting for one (`None`: every `Writer` is gone).
    pub async fn recv(&mut self) -> Option<Write> {
        let w = self.rx.recv().await;
        self.taken(w.as_ref());
        w
    }

    /// The next write if one is queued.
    pub fn try_recv(&mut self) -> Option<Write> {
        let w = self.rx.try_recv().ok();
        self.taken(w.as_ref());
        w
    }

    fn taken(&self, w: Option<&Write>) {
        if let Some(Write::Bytes(b)) = w {
            self.queued.fetch_sub(b.len(), Ordering::Relaxed);
        }
    }
}

/// Runs a connection: bytes from `writes` go out, bytes read are handed to `on_read` (the
/// next read waits for it: backpressure); returns when either side is done. The connection is
/// closed at the end.
pub async fn pump<F: Future<Output = ()>>(
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    mut writes: Writes,
    mut on_read: impl FnMut(Vec<u8>) -> F,
) {
    let writer = async {
        let mut closing = false;
        while let Some(w) = writes.recv().await {
            let Write::Bytes(mut out) = w else { break };
            // Whatever else is already queued goes out in the same write: one wakeup of the
            // connection for a burst of small records.
            while out.len() < COALESCE {
                match writes.try_recv() {
                    Some(Write::Bytes(more)) => out.extend_from_slice(&more),
                    Some(Write::Close) => {
                        closing = true;
                        break;
                    }
                    None => break,
                }
            }
            if send.write_all(&out).await.is_err() || closing {
                break;
            }
        }
        let _ = send.finish();
        // Give the peer a moment to read what was sent before the connection goes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send.stopped()).await;
    };
    let reader = async {
        while let Ok(Some(chunk)) = recv.read_chunk(READ_CHUNK).await {
            on_read(chunk.to_vec()).await;
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    conn.close(0u32.into(), b"bye");
}
