//! The relay's HTTP port: `GET /health`, `GET /metrics` (Prometheus text), `GET /connection`
//! (the relay's connection string, for browsers to start from) and `GET /sync`, a WebSocket
//! that carries exactly the record stream of the iroh bi-stream, so that browsers run the same
//! Noise IK handshake and are authenticated like any device. TLS (`wss://`) is terminated in
//! front of this port by the operator's proxy.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use zerok_core::http_head::{MAX_HEAD, RequestHead, head_end};

use crate::admission::Ticket;
use crate::metrics::Metrics;
use crate::server::Attach;
use zerok_transport_iroh::net::Write;

/// Where browsers open their WebSocket.
pub const SYNC_PATH: &str = "/sync";

/// Largest WebSocket message or frame accepted from a browser: a record is at most 64 KiB, and
/// a browser's writes are merged only up to this.
const MAX_MESSAGE: usize = 1 << 20;

/// Transport identity of a WebSocket connection in the Noise prologue: it has none (the
/// Noise static keys authenticate both ends).
const NO_TRANSPORT_ID: [u8; 32] = [0; 32];

/// What the HTTP port serves.
pub(crate) struct Site {
    pub metrics: Arc<Metrics>,
    pub connection: String,
    pub attach: Attach,
    pub serves: Serves,
    /// Origins allowed to open `/sync`; empty: any.
    pub allowed_origins: Vec<String>,
}

/// Which paths a listener serves (`/health` on every one).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serves {
    /// Everything: the relay has one HTTP port.
    All,
    /// What devices and browsers need: `/connection` and `/sync`.
    Public,
    /// What the operator needs: `/metrics`.
    Operator,
}

/// Serves `site` on `listener` from now on; returns its address.
pub(crate) fn start(listener: tokio::net::TcpListener, site: Site) -> std::io::Result<std::net::SocketAddr> {
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, Arc::new(site)));
    Ok(bound)
}

/// An accept error (out of file descriptors, say) is logged and the loop goes on after a pause:
/// it ended the loop before, and the port refused every connection for the rest of the
/// relay's life.
async fn serve(listener: tokio::net::TcpListener, site: Arc<Site>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(target: "zerok::relay", error = %e, "HTTP accept failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Over its source's cap (or the relay's): closed before a byte is read.
        let Some(ticket) = site.attach.admit(from.ip()) else { continue };
        let site = site.clone();
        tokio::spawn(async move {
            // A head sent slowly (slowloris) or never holds its socket no longer than this.
            let _ = tokio::time::timeout(HEAD_TIMEOUT, handle(stream, site, ticket)).await;
        });
    }
}

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads one request; a WebSocket upgrade leaves the timeout and runs on its own task.
async fn handle(mut stream: TcpStream, site: Arc<Site>, ticket: Ticket) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = head_end(&head) {
            break end;
        }
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 && head.len() < MAX_HEAD => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            _ => return,
        }
    };
    let rest = head.split_off(end);
    let request = RequestHead::parse(&head);
    if request.method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET only\n", false).await;
    }
    let path = request.path.as_str();
    let served = match path {
        "/health" => true,
        "/metrics" => site.serves != Serves::Public,
        _ => site.serves != Serves::Operator,
    };
    if !served {
        return respond(&mut stream, "404 Not Found", "text/plain", "not found\n", false).await;
    }
    match path {
        "/health" if site.metrics.refusing_writes() => {
            let body = "degraded: storage is full or below its free-space floor; writes are refused, reads served\n";
            respond(&mut stream, "503 Service Unavailable", "text/plain", body, false).await
        }
        "/health" => respond(&mut stream, "200 OK", "text/plain", "ok\n", false).await,
        "/metrics" => respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &site.metrics.render(), false).await,
        // Browser pages on any origin start from here: the one cross-origin read.
        "/connection" => respond(&mut stream, "200 OK", "text/plain", &format!("{}\n", site.connection), true).await,
        SYNC_PATH if !origin_allowed(&site.allowed_origins, request.header("origin")) => {
            respond(&mut stream, "403 Forbidden", "text/plain", "origin not allowed\n", false).await
        }
        SYNC_PATH => match request.websocket_key() {
            Some(key) => {
                let accept = accept_key(key);
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                if stream.write_all(response.as_bytes()).await.is_ok() {
                    tokio::spawn(websocket(stream, rest, site, ticket));
                }
            }
            None => respond(&mut stream, "426 Upgrade Required", "text/plain", "WebSocket only\n", false).await,
        },
        _ => respond(&mut stream, "404 Not Found", "text/plain", "not found\n", false).await,
    }
}

/// Whether a page of `origin` may open `/sync`: any when no list is set; a request without an
/// `Origin` is not a browser page's, which the list is about.
fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    match origin {
        Some(origin) if !allowed.is_empty() => allowed.iter().any(|a| a == origin),
        _ => true,
    }
}

/// Answers a plain request; `cors`: any origin's pages may read the answer (only
/// `/connection`: `/metrics` and `/health` are for the operator, not for other sites' scripts).
async fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str, cors: bool) {
    let cors = if cors { "Access-Control-Allow-Origin: *\r\n" } else { "" };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{cors}Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// A browser connection is pinged this often; one silent for three of these is gone (a
/// half-open connection: the peer vanished without a close).
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs one browser connection: binary messages in are record-stream bytes, writes go out as
/// binary messages.
async fn websocket(stream: TcpStream, already_read: Vec<u8>, site: Arc<Site>, ticket: Ticket) {
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
    let mut ws = WebSocketStream::from_partially_read(stream, already_read, Role::Server, Some(config)).await;
    let Some((conn, mut writes)) = site.attach.open(NO_TRANSPORT_ID, &ticket) else { return };
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    last_heard = tokio::time::Instant::now();
                    site.attach.received(conn, bytes.to_vec()).await;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = tokio::time::Instant::now(),
                // Text, close, errors and the end of the stream all end the connection.
                _ => break,
            },
            write = writes.recv() => match write {
                Some(Write::Bytes(bytes)) => {
                    if ws.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                Some(Write::Close) | None => {
                    let _ = ws.close(None).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > 3 * PING_EVERY || ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    site.attach.closed(conn);
    drop(ticket);
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 §4.2.2).
fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_only_against_a_list_and_only_for_browser_pages() {
        let list = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(&[], Some("https://evil.example")));
        assert!(origin_allowed(&list, Some("https://app.example")));
        assert!(!origin_allowed(&list, Some("https://evil.example")));
        assert!(!origin_allowed(&list, Some("https://app.example.evil")));
        assert!(origin_allowed(&list, None));
    }

    #[test]
    fn the_accept_key_of_rfc_6455() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
