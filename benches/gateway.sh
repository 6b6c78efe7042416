#!/usr/bin/env bash
# Commands and reports through a LoRa gateway (issue 16), against the same commands to a
# thing connected directly, in the same run:
#
#   bash benches/gateway.sh              # 3 repetitions (about a minute each)
#   REPS=1 COMMANDS=500 bash benches/gateway.sh
#
# Each repetition starts a fresh lithosd (loopback, its own data directory and certificate,
# things port on, `user0` the operator), then `lithos-loadgen gateway`: in the generator's
# process a gateway on a simulated radio with no delay and 255 nodes (each configured by
# LoRa-DAC), one light connected directly; COMMANDS flashes one at a time to the direct
# light, then through the gateway (round robin over the nodes), then IN_FLIGHT at a time;
# then 255 thermometer nodes behind a second gateway report REPORTS readings each,
# acknowledged (QoS 1 upstream). JSON lines go to target/gateway-bench/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lithos-config.sh
REPS="${REPS:-3}"
COMMANDS="${COMMANDS:-2000}"
IN_FLIGHT="${IN_FLIGHT:-16}"
REPORTS="${REPORTS:-20}"
FORMAT="${FORMAT:-xml}"
OUT=target/gateway-bench
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
cargo build -q --release -p lithosd -p lithos-loadgen
LITHOSD=target/release/lithosd
LOADGEN=target/release/lithos-loadgen
WORK=$(mktemp -d)
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port=32000
for rep in $(seq "$REPS"); do
  port=$((port + 2)); dir="$WORK/r$rep"; mkdir -p "$dir"
  LITHOS_THINGS_PORT=$((port + 1)) lithos_config "$dir" "$port" '[modules.operator]
operators = ["user0"]' > "$dir/lithos.toml"
  "$LITHOSD" --config "$dir/lithos.toml" 2> "$dir/lithosd.log" &
  PID=$!
  wait_port "$port"
  wait_port $((port + 1))
  "$LOADGEN" register --addr "127.0.0.1:$port" --accounts 1 > /dev/null
  "$LOADGEN" gateway --addr "127.0.0.1:$port" --things-addr "127.0.0.1:$((port + 1))" \
    --operator user0 --pinned-cert "$dir/data/tls/cert.pem" --server-pid "$PID" \
    --commands "$COMMANDS" --in-flight "$IN_FLIGHT" --reports "$REPORTS" --format "$FORMAT" \
    | sed "s/^{/{\"rep\":$rep,/" | tee -a "$OUT/results.jsonl"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
