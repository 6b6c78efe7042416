#!/usr/bin/env bash
# Starts lithosd on a private data directory and loopback ports, creates two accounts, runs
# the slixmpp interop script against it, and stops the server. Needs a built lithosd and a
# Python with slixmpp (first and second arguments).
set -euo pipefail
LITHOSD="$1"
PYTHON="$2"
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/lithos.toml" <<TOML
data_dir = "$dir/data"
[c2s]
listen = ["127.0.0.1:$port"]
direct_tls = []
TOML
echo juliet-pw | "$LITHOSD" --config "$dir/lithos.toml" user add juliet
echo romeo-pw | "$LITHOSD" --config "$dir/lithos.toml" user add romeo
"$LITHOSD" --config "$dir/lithos.toml" > "$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
if ! "$PYTHON" "$here/slixmpp_interop.py" 127.0.0.1 "$port" "$dir/data/tls/cert.pem"; then
  echo "--- server log"; cat "$dir/server.log"
  exit 1
fi
