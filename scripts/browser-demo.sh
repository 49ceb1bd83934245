#!/usr/bin/env bash
# The browser demo from one command: installs what is missing, builds the wasm package and the
# relay, starts the relay (with its HTTP port, where browsers open their WebSocket) and a static
# server for the page, both on loopback, and prints where to point two browser tabs.
#   PORT (8787): the page;  RELAY_HTTP (8788): the relay's HTTP port.  Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/wasm-build.sh
cargo build --release -p zerok --quiet
port=${PORT:-8787}
relay_http=${RELAY_HTTP:-8788}
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
target/release/zerok relay --data-dir "$data/relay" --bind 127.0.0.1:0 --http "127.0.0.1:$relay_http" &
python3 -m http.server "$port" --bind 127.0.0.1 --directory bindings-wasm/www >/dev/null 2>&1 &
sleep 1
relay="http%3A%2F%2F127.0.0.1%3A$relay_http"
echo
echo "demo: open these two in a browser (two devices of one browser), invite on one, join on the other:"
echo "  http://127.0.0.1:$port/?device=alice&relay=$relay"
echo "  http://127.0.0.1:$port/?device=bob&relay=$relay"
wait
