//! The request head of the relay's HTTP port (health, metrics, the connection string and the
//! browsers' WebSocket upgrade): the little of HTTP/1.1 the relay reads, from untrusted bytes.
//! It lives here, beside the other parsers of network input, so that it is fuzzed with them.

/// Largest request head the relay reads.
pub const MAX_HEAD: usize = 8 * 1024;

/// Where the head in `buffer` ends (just past its blank line), once it has.
pub fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// The parts of a request head the relay looks at. Anything unreadable parses to empty parts,
/// which no route matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, ...
    pub method: String,
    /// The target without its query.
    pub path: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Parses a head (invalid UTF-8 is replaced, not refused).
    pub fn parse(head: &[u8]) -> RequestHead {
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_owned();
        let target = first.next().unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default().to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        RequestHead { method, path, headers }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The client's key, if this is a well-formed WebSocket upgrade (version 13).
    pub fn websocket_key(&self) -> Option<&str> {
        let upgrade = self.header("upgrade")?.eq_ignore_ascii_case("websocket");
        let connection = self.header("connection")?.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        let version = self.header("sec-websocket-version")? == "13";
        (upgrade && connection && version).then(|| self.header("sec-websocket-key")).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /sync?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n";

    #[test]
    fn upgrades_need_every_header() {
        let r = RequestHead::parse(UPGRADE.as_bytes());
        assert_eq!((r.method.as_str(), r.path.as_str(), r.websocket_key()), ("GET", "/sync", Some("abc")));
        for broken in [
            UPGRADE.replace("websocket", "h2c"),
            UPGRADE.replace(": 13", ": 8"),
            UPGRADE.replace("Sec-WebSocket-Key: abc\r\n", ""),
        ] {
            assert_eq!(RequestHead::parse(broken.as_bytes()).websocket_key(), None, "{broken:?}");
        }
    }

    #[test]
    fn garbage_parses_to_nothing_routable() {
        for garbage in [&b"garbage"[..], b"", b"\xff\xfe GET", b"\r\n\r\n", b":::\r\n:"] {
            let r = RequestHead::parse(garbage);
            assert!(r.path.is_empty() || !r.path.starts_with('/'), "{garbage:?} -> {r:?}");
            assert_eq!(r.websocket_key(), None);
        }
    }

    #[test]
    fn the_head_ends_after_its_blank_line() {
        assert_eq!(head_end(UPGRADE.as_bytes()), Some(UPGRADE.len()));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
