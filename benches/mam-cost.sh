#!/usr/bin/env bash
# What the message archive (XEP-0313) costs the server per message: the same message load at
# a fixed rate against lithosd with the archive off and on, interleaved, in the same run, and
# a count of what was archived (every chat is archived twice: for its sender and for its
# recipient). The rate is one the archive's writer sustains on this machine, so the figure is
# the cost of archiving everything, not of dropping what overflows its queue.
#
#   bash benches/mam-cost.sh                 # 3 repetitions, 100 pairs, 5,000 messages/s
#   REPS=5 RATE=10000 bash benches/mam-cost.sh
#
# JSON lines in target/mam-cost/results.jsonl; a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lithos-config.sh
REPS="${REPS:-3}"
PAIRS="${PAIRS:-100}"
MSGS="${MSGS:-300}"
RATE="${RATE:-5000}"
OUT=target/mam-cost
rm -rf "$OUT"
mkdir -p "$OUT"
cargo build -q --release -p lithosd -p lithos-loadgen
LITHOSD="$PWD/target/release/lithosd"
LOADGEN="$PWD/target/release/lithos-loadgen"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
port=$((20000 + RANDOM % 10000))
for rep in $(seq "$REPS"); do
  for variant in off on; do
    port=$((port + 1)); dir="$WORK/$variant-$rep"; mkdir -p "$dir"
    extra=""; [ "$variant" = on ] && extra="$MAM_ON"
    lithos_config "$dir" "$port" "$extra" > "$dir/lithos.toml"
    "$LITHOSD" --config "$dir/lithos.toml" > "$dir/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    T=(--addr "127.0.0.1:$port" --server-pid "$PID")
    "$LOADGEN" register "${T[@]}" --accounts $((PAIRS * 2)) --in-flight 20 > /dev/null
    line=$("$LOADGEN" messages "${T[@]}" --pairs "$PAIRS" --messages "$MSGS" --in-flight 16 --rate "$RATE")
    sleep 2
    archived=0
    if [ "$variant" = on ]; then
      archived=$(sqlite3 "$dir/data/lithos.sqlite" "SELECT COUNT(*) FROM mam_messages")
    fi
    echo "$line" | sed "s/^{/{\"variant\":\"$variant\",\"rep\":$rep,\"archived\":$archived,/" | tee -a "$OUT/results.jsonl"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  done
done
python3 - "$OUT/results.jsonl" "$PAIRS" "$MSGS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
expected = int(sys.argv[2]) * int(sys.argv[3])
med = lambda v, k: statistics.median(r[k] for r in rows if r["variant"] == v)
off, on = med("off", "server_cpu_ms_per_1000"), med("on", "server_cpu_ms_per_1000")
archived = [r["archived"] for r in rows if r["variant"] == "on"]
print(f"\nmedians of {len(archived)} interleaved repetitions, {expected} messages at {rows[0]['offered_rate']}/s")
print(f"| | archive off | archive on | on / off |\n|---|---:|---:|---:|")
print(f"| server CPU-ms per 1,000 messages | {off:.2f} | {on:.2f} | {on/off:.2f}x |")
print(f"| latency p99 (ms) | {med('off','latency_p99_ms'):.2f} | {med('on','latency_p99_ms'):.2f} | |")
print(f"\narchived rows per run: {archived} (2 per message: {2*expected}); "
      f"CPU per archived row: {(on-off)/2:.1f} us")
PY
