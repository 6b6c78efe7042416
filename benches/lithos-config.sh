# Sourced by the benchmark scripts: the configuration every benchmark gives lithosd, and
# wait_port.
#
# lithos_config DIR PORT [EXTRA]: prints it for a server keeping its data in DIR/data and
# listening on 127.0.0.1:PORT (plaintext, PLAIN allowed, in-band registration open), with
# EXTRA appended. The things port is off unless LITHOS_THINGS_PORT names one, the HTTP
# listener (WebSocket) unless LITHOS_HTTP_PORT does.
lithos_config() {
  cat <<TOML
domain = "localhost"
data_dir = "$1/data"
[log]
level = "error"
[things]
listen = [${LITHOS_THINGS_PORT:+\"127.0.0.1:$LITHOS_THINGS_PORT\"}]
[http]
listen = [${LITHOS_HTTP_PORT:+\"127.0.0.1:$LITHOS_HTTP_PORT\"}]
[c2s]
listen = ["127.0.0.1:$2"]
direct_tls = []
require_tls = false
allow_plain_without_tls = true
idle_timeout_secs = 3600
negotiation_timeout_secs = 120
[modules.register]
enabled = true
min_seconds_between = 0
min_password_length = 1
${3:-}
TOML
}

# What makes the "shaped" variant: no trusted network, and a rate too high to slow anyone,
# so the token bucket runs on every read.
SHAPED_LIMITS="[limits]
trusted_networks = []
c2s_rate = 1073741824
c2s_burst = 1073741824
max_connections_per_address = 1000000
max_unauthenticated_connections = 1000000"

# What makes the "mam" variant: the message archive on (off by default), every chat archived
# twice (for its sender and its recipient).
MAM_ON="[modules.mam]
enabled = true"

# wait_port PORT: waits (up to 20 s) until something listens on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
