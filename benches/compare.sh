#!/usr/bin/env bash
# Lithos against Prosody and ejabberd (Debian packages), same machine, same run.
#
#   bash benches/compare.sh            # 3 interleaved repetitions (about 15 minutes)
#   REPS=1 IDLE=1000 bash benches/compare.sh   # a quick look
#   PEERS=0 ...                        # Lithos only (with the A/B below: no peer needed)
#   LITHOS_MAM=1 ...                   # also "lithos-mam": this build with the message
#                                      # archive on (XEP-0313, off by default)
#   LITHOS_BASE=/path/to/old/lithosd LITHOS_SHAPED=1 bash benches/compare.sh
#                                      # also an A/B: another build of lithosd ("lithos-base",
#                                      # run with the configuration it knows), and this one
#                                      # with every connection shaped ("lithos-shaped": no
#                                      # trusted network, a rate too high to slow anyone, so
#                                      # the token bucket runs on every read)
#
# Each server gets a private configuration, data directory and loopback port; plaintext,
# SASL PLAIN, passwords stored in plain where the server allows it (Prosody, ejabberd;
# Lithos always stores salted SCRAM keys); accounts created by in-band registration, the same
# way on every server. For each repetition and server, interleaved: a fresh server runs the
# message scenario (throughput, the same with XEP-0198 stream management on every client
# (acks requested every 5 stanzas; each server's own module: Lithos's kernel, Prosody's
# mod_smacks, ejabberd's mod_stream_mgmt), then unloaded latency, then latency at half the
# measured rate), the throughput run again over XMPP on WebSocket (RFC 7395: Lithos's
# [http] listener, Prosody's mod_websocket, ejabberd's ejabberd_http_ws), then fan-out through one multi-user chat room (MUC_OCCUPANTS occupants, 100;
# 10 of them send MUC_MSGS groupchat messages each, 200, 4 in flight; each server's own MUC:
# lithos-muc, Prosody's muc component, ejabberd's mod_muc); another fresh server holds IDLE
# logged-in clients (logins/s with PLAIN; memory per connection once they have been idle
# 12 s, the generator's default), then logs them in again with SCRAM-SHA-1, then fans
# PUBSUB_ITEMS items (100, 4 in flight) out through one pubsub node to PUBSUB_SUBSCRIBERS
# subscribers (1,000; each server's own service). JSON lines are kept in
# target/compare/, and a table of medians and ratios is printed at the end. Every process
# it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lithos-config.sh
REPS="${REPS:-3}"
PAIRS="${PAIRS:-100}"
MSGS="${MSGS:-2000}"
WINDOW="${WINDOW:-64}"
HALF_SECS="${HALF_SECS:-3}"
IDLE="${IDLE:-5000}"
MUC_OCCUPANTS="${MUC_OCCUPANTS:-100}"
MUC_MSGS="${MUC_MSGS:-200}"
PUBSUB_SUBSCRIBERS="${PUBSUB_SUBSCRIBERS:-1000}"
PUBSUB_ITEMS="${PUBSUB_ITEMS:-100}"
OUT=target/compare
rm -rf "$OUT"
mkdir -p "$OUT"
export DEBIAN_FRONTEND=noninteractive
PEERS="${PEERS:-1}"
[ "$PEERS" = 0 ] || for pkg in prosody ejabberd; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    apt-get install -y "$pkg" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$pkg" >/dev/null; }
  fi
done
# The packages' own services are not used (and must not hold the ports).
service prosody stop >/dev/null 2>&1 || true
service ejabberd stop >/dev/null 2>&1 || true
ulimit -n "$(ulimit -Hn)"
cargo build -q --release -p lithosd -p lithos-loadgen
LITHOSD="$PWD/target/release/lithosd"
LOADGEN="$PWD/target/release/lithos-loadgen"
WORK="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  pkill -u ejabberd beam.smp 2>/dev/null || true
  pkill -u ejabberd epmd 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start_lithos() { # dir port [extra configuration] [binary]; WS_PORT: the HTTP listener
  LITHOS_HTTP_PORT="${WS_PORT:-}" lithos_config "$1" "$2" "${3:-}" > "$1/lithos.toml"
  "${4:-$LITHOSD}" --config "$1/lithos.toml" > "$1/server.log" 2>&1 &
  PID=$!
  wait_port "$2"
  SERVER_PID=$PID
}

start_prosody() { # dir port; WS_PORT: mod_websocket's HTTP port
  mkdir -p "$1/data" "$1/certs"
  cat > "$1/prosody.cfg.lua" <<LUA
run_as_root = true
data_path = "$1/data"
certificates = "$1/certs"
log = { { levels = { min = "error" }, to = "file", filename = "$1/prosody.log" } }
c2s_ports = { $2 }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { ${WS_PORT:-} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "ping", "register", "presence", "message", "smacks", "websocket" }
-- Plain WebSocket on loopback, as Lithos's loopback_is_secure and ejabberd's listener allow.
consider_websocket_secure = true
modules_disabled = { "s2s", "posix", "tls" }
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
registration_throttle_max = 1000000
c2s_timeout = 3600
network_settings = { tcp_backlog = 1024 }
-- Prosody's pubsub lets only admins create nodes: the pubsub fan-out's publisher is one.
admins = { "user0@localhost" }
VirtualHost "localhost"
Component "pubsub.localhost" "pubsub"
Component "conference.localhost" "muc"
  restrict_room_creation = false
  muc_room_locking = false
  muc_room_default_history_length = 20
LUA
  prosody -F --config "$1/prosody.cfg.lua" > "$1/stdout.log" 2>&1 &
  PID=$!
  wait_port "$2"
  SERVER_PID=$PID
}

start_ejabberd() { # dir port; WS_PORT: ejabberd_http with ejabberd_http_ws at /websocket
  mkdir -p "$1/spool" "$1/logs"
  cp /etc/ejabberd/inetrc "$1/"
  grep -v EJABBERD_CONFIG_PATH /etc/ejabberd/ejabberdctl.cfg > "$1/ejabberdctl.cfg"
  cat > "$1/ejabberd.yml" <<YML
hosts:
  - localhost
loglevel: error
listen:
  -
    port: $2
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: false
  -
    port: ${WS_PORT:-5280}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      "/websocket": ejabberd_http_ws
auth_method: internal
auth_password_format: plain
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  register:
    allow: all
shaper_rules: {}
registration_timeout: infinity
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_register:
    ip_access: all
    access: register
  mod_stream_mgmt: {}
  mod_caps: {}
  mod_pubsub:
    host: "pubsub.localhost"
    access_createnode: all
    plugins: [flat]
  mod_muc:
    host: "conference.localhost"
    access: all
    access_create: all
    history_size: 20
    max_users: 1000
YML
  chown -R ejabberd:ejabberd "$1"
  chmod a+rx "$WORK"
  # runuser starts a PAM session, which resets the open-file limit to 1024: raise it again
  # inside, or ejabberd stops accepting at about 1,000 connections.
  (cd "$1" && runuser -u ejabberd -- sh -c "ulimit -n $(ulimit -Hn); exec /usr/sbin/ejabberdctl \
     --config-dir '$1' --spool '$1/spool' --logs '$1/logs' --node lithosbench$RANDOM@localhost \
     foreground" > "$1/stdout.log" 2>&1) &
  PID=$!
  wait_port "$2"
  SERVER_PID=$(pgrep -n -u ejabberd beam.smp)
}

# The A/B variants.
start_lithos-base() { start_lithos "$1" "$2" "" "$LITHOS_BASE"; }
start_lithos-shaped() { start_lithos "$1" "$2" "$SHAPED_LIMITS"; }
start_lithos-mam() { start_lithos "$1" "$2" "$MAM_ON"; }

stop_server() {
  if [ "$1" = ejabberd ]; then
    pkill -u ejabberd beam.smp 2>/dev/null || true
    pkill -u ejabberd epmd 2>/dev/null || true
  fi
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
  sleep 1
}

ws_path() { # server: the path of its XMPP-over-WebSocket endpoint
  case "$1" in ejabberd) echo /websocket ;; *) echo /xmpp-websocket ;; esac
}

run() { # server rep scenario-tag args...
  local server=$1 rep=$2 tag=$3
  shift 3
  "$LOADGEN" "$@" | sed "s/^{/{\"server\":\"$server\",\"rep\":$rep,\"tag\":\"$tag\",/" | tee -a "$OUT/results.jsonl"
}

SERVERS=(lithos)
[ "$PEERS" = 0 ] || SERVERS+=(prosody ejabberd)
[ -n "${LITHOS_BASE:-}" ] && SERVERS+=(lithos-base)
[ -n "${LITHOS_SHAPED:-}" ] && SERVERS+=(lithos-shaped)
[ -n "${LITHOS_MAM:-}" ] && SERVERS+=(lithos-mam)
port=31000
for rep in $(seq "$REPS"); do
  for server in "${SERVERS[@]}"; do
    echo "== repetition $rep: $server" >&2
    # Messages, on a fresh server.
    port=$((port + 2)); dir="$WORK/$server-m$rep"; mkdir -p "$dir"
    WS_PORT=$((port + 1)) "start_$server" "$dir" "$port"
    T=(--addr "127.0.0.1:$port" --server-pid "$SERVER_PID")
    W=(--addr "127.0.0.1:$((port + 1))" --server-pid "$SERVER_PID" --websocket "$(ws_path "$server")")
    "$LOADGEN" register "${T[@]}" --accounts $((PAIRS * 2 > MUC_OCCUPANTS ? PAIRS * 2 : MUC_OCCUPANTS)) \
      --in-flight 20 > "$dir/register.json"
    run "$server" "$rep" throughput messages "${T[@]}" --pairs "$PAIRS" --messages "$MSGS" --in-flight "$WINDOW"
    run "$server" "$rep" unloaded messages "${T[@]}" --pairs 10 --messages 500 --in-flight 1
    rate=$(tail -n 2 "$OUT/results.jsonl" | head -n 1 | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["msgs_per_s"] / 2))')
    # Long enough to be a steady state at any server's rate: HALF_SECS seconds, at least MSGS/4 per pair.
    half_msgs=$(( rate * HALF_SECS / PAIRS > MSGS / 4 ? rate * HALF_SECS / PAIRS : MSGS / 4 ))
    run "$server" "$rep" half-rate messages "${T[@]}" --pairs "$PAIRS" --messages "$half_msgs" --in-flight "$WINDOW" --rate "$rate"
    # Last on this server: a stream management run leaves nothing behind only if every
    # server takes the receivers' final acknowledgement as it should.
    run "$server" "$rep" throughput-sm messages "${T[@]}" --pairs "$PAIRS" --messages "$MSGS" --in-flight "$WINDOW" --sm
    # The same exchange over XMPP on WebSocket (RFC 7395; each server's own: Lithos's [http],
    # Prosody's mod_websocket, ejabberd's ejabberd_http_ws).
    run "$server" "$rep" throughput-ws messages "${W[@]}" --pairs "$PAIRS" --messages "$MSGS" --in-flight "$WINDOW"
    # Fan-out through one room of MUC_OCCUPANTS (each server's own MUC service).
    run "$server" "$rep" muc-fanout muc "${T[@]}" --occupants "$MUC_OCCUPANTS" --senders 10 \
      --messages "$MUC_MSGS" --in-flight 4 --service conference.localhost
    stop_server "$server"
    # Idle connections and logins, on another fresh server.
    port=$((port + 2)); dir="$WORK/$server-c$rep"; mkdir -p "$dir"
    WS_PORT=$((port + 1)) "start_$server" "$dir" "$port"
    T=(--addr "127.0.0.1:$port" --server-pid "$SERVER_PID")
    "$LOADGEN" register "${T[@]}" --accounts "$IDLE" --in-flight 20 > "$dir/register.json"
    run "$server" "$rep" idle-plain connect "${T[@]}" --clients "$IDLE" --in-flight 100
    run "$server" "$rep" scram-sha1 connect "${T[@]}" --clients "$IDLE" --in-flight 100 --mech scram-sha1 --settle 0
    # Fan-out through one pubsub node of PUBSUB_SUBSCRIBERS (each server's own service:
    # lithos-pubsub, Prosody's pubsub component, ejabberd's mod_pubsub); needs IDLE accounts.
    if [ "$IDLE" -ge "$PUBSUB_SUBSCRIBERS" ]; then
      run "$server" "$rep" pubsub-fanout pubsub "${T[@]}" \
        --subscribers "$PUBSUB_SUBSCRIBERS" --items "$PUBSUB_ITEMS" --in-flight 4 --service pubsub.localhost
    fi
    stop_server "$server"
  done
done
python3 "$(dirname "$0")/compare_report.py" "$OUT/results.jsonl" | tee "$OUT/report.md"
