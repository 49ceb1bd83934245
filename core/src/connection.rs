//! Relay connection strings: `zerok1:<endpoint id hex>:<noise key hex>@<addr>,<addr>`. What a
//! relay prints at start and what devices are given to reach it. An address is a UDP socket
//! address (iroh QUIC, native devices) or a `ws://` / `wss://` URL (browsers).

use data_encoding::HEXLOWER;

use crate::client::RelayInfo;
use crate::keys::NoisePublic;

const PREFIX: &str = "zerok1:";

/// The connection string of a relay.
pub fn format(info: &RelayInfo) -> String {
    let (id, key) = (HEXLOWER.encode(&info.endpoint_id), HEXLOWER.encode(&info.noise_key.0));
    format!("{PREFIX}{id}:{key}@{}", info.addrs.join(","))
}

/// Reads a connection string.
pub fn parse(text: &str) -> Result<RelayInfo, String> {
    let bad = || format!("not a relay connection string (expected {PREFIX}<id>:<key>@<address>): {text:?}");
    let rest = text.trim().strip_prefix(PREFIX).ok_or_else(bad)?;
    let (keys, addrs) = rest.split_once('@').ok_or_else(bad)?;
    let (id, key) = keys.split_once(':').ok_or_else(bad)?;
    let addrs: Vec<String> = addrs.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect();
    let usable =
        |a: &String| a.parse::<std::net::SocketAddr>().is_ok() || a.starts_with("ws://") || a.starts_with("wss://");
    if addrs.is_empty() || !addrs.iter().all(usable) {
        return Err(bad());
    }
    Ok(RelayInfo {
        endpoint_id: unhex(id).ok_or_else(bad)?,
        noise_key: NoisePublic(unhex(key).ok_or_else(bad)?),
        addrs,
    })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    HEXLOWER.decode(text.as_bytes()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let info = RelayInfo {
            endpoint_id: [0xab; 32],
            noise_key: NoisePublic([0x01; 32]),
            addrs: vec!["127.0.0.1:4433".into(), "wss://relay.example/sync".into()],
        };
        let text = format(&info);
        assert_eq!(parse(&text), Ok(info));
        for bad in [
            "",
            "zerok1:",
            "zerok1:aa:bb@x",
            &text.replace("wss:", "http:"),
            &text.replace('@', "#"),
            &text.replace("4433", ""),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
