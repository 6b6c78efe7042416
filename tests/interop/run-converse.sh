#!/usr/bin/env bash
# Converse.js (npm, tests/interop/converse's lockfile) in Debian's headless Chromium logs in
# to lithosd over XMPP on WebSocket and chats with a slixmpp client on TCP. Starts lithosd on
# a private data directory and loopback ports, serves the page with Python's http.server, and
# stops both. Needs a built lithosd and a Python with slixmpp and selenium (arguments).
set -euo pipefail
LITHOSD="$1"
PYTHON="$2"
here="$(cd "$(dirname "$0")" && pwd)"
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$bin" ] || { echo "FAILED: $bin missing (Debian packages chromium, chromium-driver)"; exit 1; }
done
(cd "$here/converse" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 12000))
hport=$((port + 1))
wport=$((port + 2))
pid=""
web=""
trap 'kill $web $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/lithos.toml" <<TOML
data_dir = "$dir/data"
[things]
listen = []
[c2s]
listen = ["127.0.0.1:$port"]
direct_tls = []
[http]
listen = ["127.0.0.1:$hport"]
TOML
echo alice-pw | "$LITHOSD" --config "$dir/lithos.toml" user add alice
echo bob-pw | "$LITHOSD" --config "$dir/lithos.toml" user add bob
"$LITHOSD" --config "$dir/lithos.toml" > "$dir/server.log" 2>&1 &
pid=$!
"$PYTHON" -m http.server "$wport" --bind 127.0.0.1 --directory "$here/converse" > "$dir/web.log" 2>&1 &
web=$!
for p in "$port" "$hport" "$wport"; do
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then break; fi
    sleep 0.1
  done
done
if ! "$PYTHON" "$here/converse_interop.py" "http://127.0.0.1:$wport/index.html" \
    "ws://127.0.0.1:$hport/xmpp-websocket" 127.0.0.1 "$port" "$dir/data/tls/cert.pem"; then
  echo "--- server log"; cat "$dir/server.log"
  exit 1
fi
