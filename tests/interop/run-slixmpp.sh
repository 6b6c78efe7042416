#!/usr/bin/env bash
# Starts lithosd on a private data directory and loopback ports, creates two accounts, runs
# the slixmpp interop script against it, and stops the server. Needs a built lithosd and a
# Python with slixmpp (first and second arguments). With a third argument, the path of the
# echo-bot example, it also runs the bot (as bot@localhost) and checks that slixmpp gets
# its echo. A slixmpp component attaches on a second port (XEP-0114). LITHOS_STORAGE, when
# set, is a [storage] section for the server (PostgreSQL, say).
set -euo pipefail
LITHOSD="$1"
PYTHON="$2"
ECHO_BOT="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
# Below the ephemeral range (32768 and up), where a client socket may hold the port.
port=$((20000 + RANDOM % 12000))
cport=$((port + 1))
hport=$((port + 2))
bot=""
trap 'kill $bot "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/lithos.toml" <<TOML
data_dir = "$dir/data"
[things]
listen = []
[c2s]
listen = ["127.0.0.1:$port"]
direct_tls = []
[modules.mam]
enabled = true
[http]
listen = ["127.0.0.1:$hport"]
[components]
listen = ["127.0.0.1:$cport"]
[components.secrets]
"echo.localhost" = "echo-secret-1"
${LITHOS_STORAGE:-}
TOML
echo juliet-pw | "$LITHOSD" --config "$dir/lithos.toml" user add juliet
echo romeo-pw | "$LITHOSD" --config "$dir/lithos.toml" user add romeo
"$LITHOSD" --config "$dir/lithos.toml" > "$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
args=(127.0.0.1 "$port" "$dir/data/tls/cert.pem" --component "$cport")
if [ -n "$ECHO_BOT" ]; then
  echo bot-pw | "$LITHOSD" --config "$dir/lithos.toml" user add bot
  LITHOS_PASSWORD=bot-pw "$ECHO_BOT" --jid bot@localhost/echo --address "127.0.0.1:$port" \
    --pinned-cert "$dir/data/tls/cert.pem" > "$dir/bot.log" 2>&1 &
  bot=$!
  args+=(--echo-bot)
fi
if ! "$PYTHON" "$here/slixmpp_interop.py" "${args[@]}"; then
  echo "--- server log"; cat "$dir/server.log"
  [ -n "$ECHO_BOT" ] && { echo "--- echo-bot log"; cat "$dir/bot.log"; }
  exit 1
fi
# What the run sent shows in /metrics, which the Prometheus parser reads.
if ! "$PYTHON" "$here/check_metrics.py" "http://127.0.0.1:$hport"; then
  echo "--- server log"; cat "$dir/server.log"
  exit 1
fi
