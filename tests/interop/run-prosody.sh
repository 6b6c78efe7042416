#!/usr/bin/env bash
# Starts Prosody (from the Debian package) on a private configuration, data directory and
# loopback port, creates two accounts, runs lithos-client's Prosody test against it, and
# stops it. Installs Prosody with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v prosody >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y prosody >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y prosody >/dev/null; }
fi
dir="$(mktemp -d)"
# Below the ephemeral range (32768 and up), where a client socket may hold the port.
port=$((20000 + RANDOM % 12000))
pid=""
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  -keyout "$dir/localhost.key" -out "$dir/localhost.crt" 2>/dev/null
mkdir -p "$dir/data" "$dir/certs"
# (an empty certificate directory: the one certificate is named in `ssl` below)
cat > "$dir/prosody.cfg.lua" <<LUA
run_as_root = true
data_path = "$dir/data"
certificates = "$dir/certs"
log = { { levels = { min = "info" }, to = "file", filename = "$dir/prosody.log" } }
c2s_ports = { $port }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "message" }
modules_disabled = { "s2s", "posix" }
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = { key = "$dir/localhost.key", certificate = "$dir/localhost.crt" }
VirtualHost "localhost"
LUA
prosodyctl --config "$dir/prosody.cfg.lua" register juliet localhost juliet-pw-1
prosodyctl --config "$dir/prosody.cfg.lua" register romeo localhost romeo-pw-1
prosody -F --config "$dir/prosody.cfg.lua" > "$dir/stdout.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "prosody $(prosodyctl --config "$dir/prosody.cfg.lua" about 2>/dev/null | awk '/^Prosody/ {print $2; exit}') on 127.0.0.1:$port"
if ! LITHOS_PROSODY="127.0.0.1:$port,$dir/localhost.crt" \
    cargo test -q -p lithos-client --test against_prosody -- --ignored --nocapture; then
  echo "--- prosody log"; cat "$dir/prosody.log" "$dir/stdout.log"
  exit 1
fi
