#!/usr/bin/env bash
# profanity (the Debian package), driven through tmux, against lithosd: it logs in over
# STARTTLS, receives a message from bob and answers it, shows the carbon of a message
# another resource of its account sent, and, with /mam on, shows that message again from the
# archive after a restart, although it never received it itself. The peers are slixmpp
# (profanity_peer.py). Needs a built lithosd and a Python with slixmpp.
#
#   bash tests/interop/run-profanity.sh target/debug/lithosd /tmp/lithos-ci-venv/bin/python
set -euo pipefail
LITHOSD="$1"
PYTHON="$2"
here="$(cd "$(dirname "$0")" && pwd)"
for pkg in profanity tmux; do
  if ! command -v "$pkg" >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >/dev/null 2>&1; } \
      || { echo "FAILED: cannot install $pkg from its Debian package"; exit 1; }
  fi
done
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 12000))
session="lithos-profanity-$$"
pid=""
trap 'tmux kill-session -t "$session" 2>/dev/null || true; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/lithos.toml" <<TOML
data_dir = "$dir/data"
[things]
listen = []
[http]
listen = []
[c2s]
listen = ["127.0.0.1:$port"]
direct_tls = []
[modules.mam]
enabled = true
TOML
echo alice-pw | "$LITHOSD" --config "$dir/lithos.toml" user add alice >/dev/null
echo bob-pw | "$LITHOSD" --config "$dir/lithos.toml" user add bob >/dev/null
"$LITHOSD" --config "$dir/lithos.toml" > "$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
mkdir -p "$dir/home"
peer() { "$PYTHON" "$here/profanity_peer.py" 127.0.0.1 "$port" "$dir/data/tls/cert.pem" "$@"; }
screen() { tmux capture-pane -p -t "$session"; }
fail() {
  echo "FAILED: $1"
  echo "--- profanity's screen"; screen || true
  echo "--- server log"; cat "$dir/server.log"
  exit 1
}
# Waits (up to 20 s) for TEXT on profanity's screen.
see() {
  for _ in $(seq 100); do
    screen | grep -qF -- "$1" && return 0
    sleep 0.2
  done
  fail "profanity did not show: $1"
}
keys() { tmux send-keys -t "$session" -- "$1" Enter; }
start_profanity() {
  tmux new-session -d -s "$session" -x 180 -y 45 "HOME=$dir/home profanity"
  see "Profanity"
  keys "/connect alice@localhost server 127.0.0.1 port $port tls trust"
  see "password"
  keys "alice-pw"
  see "logged in successfully"
}

start_profanity
echo "profanity logged in over STARTTLS"
peer bob-says "Hello from bob" > "$dir/bob.out" &
bob=$!
see "chat message: bob@localhost/desk"
keys "/win 2"
see "Hello from bob"
keys "Hello from profanity"
wait "$bob" || fail "bob did not get profanity's answer"
grep -qF "bob got: Hello from profanity" "$dir/bob.out" || fail "bob got something else: $(cat "$dir/bob.out")"
echo "profanity received bob's message and answered it"

peer laptop-says "Sent from alice's laptop" >/dev/null || fail "the laptop could not write"
see "me: Sent from alice's laptop"
echo "profanity showed the carbon of what another resource of alice's sent (XEP-0280)"

keys "/win 1"
keys "/mam on"
see "Message Archive Management"
keys "/quit"
sleep 1
tmux kill-session -t "$session" 2>/dev/null || true
peer laptop-says "Written while profanity was closed" >/dev/null || fail "the laptop could not write"
start_profanity
keys "/mam on"
see "Message Archive Management"
keys "/msg bob@localhost"
see "Written while profanity was closed"
echo "profanity showed, from the archive, a message it never received (XEP-0313)"
keys "/quit"
echo "OK"
