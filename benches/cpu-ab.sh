#!/usr/bin/env bash
# Server CPU per 1,000 routed messages of two lithosd builds (or one, shaped and not), run
# interleaved: a fresh server per run, 100 pairs exchanging a million messages with 64 in
# flight. compare.sh's three short repetitions resolve this figure to about ±9 % on a shared
# machine; eight runs of a million messages each resolve about 1 %.
#
#   bash benches/cpu-ab.sh before=/path/to/old/lithosd after=target/release/lithosd
#   bash benches/cpu-ab.sh after=target/release/lithosd shaped=target/release/lithosd
#
# A variant named `shaped` runs with no trusted network and a rate too high to slow anyone,
# so the token bucket runs on every read. REPS (8) and MSGS (10000 per pair) can be set.
# Prints one line per run (variant, CPU-ms per 1,000, messages/s) and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lithos-config.sh
REPS="${REPS:-8}"
MSGS="${MSGS:-10000}"
cargo build -q --release -p lithos-loadgen
LOADGEN="$PWD/target/release/lithos-loadgen"
ulimit -n "$(ulimit -Hn)"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
results="$WORK/results"

run_one() { # name binary port
  local d="$WORK/$1-$3" extra=""
  mkdir -p "$d"
  [ "$1" = shaped ] && extra="$SHAPED_LIMITS"
  lithos_config "$d" "$3" "$extra" > "$d/lithos.toml"
  "$2" --config "$d/lithos.toml" > "$d/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && break; sleep 0.1; done
  "$LOADGEN" register --addr "127.0.0.1:$3" --server-pid "$PID" --accounts 200 --in-flight 20 > /dev/null
  "$LOADGEN" messages --addr "127.0.0.1:$3" --server-pid "$PID" --pairs 100 --messages "$MSGS" --in-flight 64 \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sys.argv[1], r["server_cpu_ms_per_1000"], r["msgs_per_s"])' "$1" \
    | tee -a "$results"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  PID=""
}

# Below the ephemeral port range, so no client socket of an earlier run holds the port.
port=21000
for _ in $(seq "$REPS"); do
  for v in "$@"; do
    port=$((port + 1))
    run_one "${v%%=*}" "${v#*=}" "$port"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for name in dict.fromkeys(r[0] for r in rows):
    cpu = [float(r[1]) for r in rows if r[0] == name]
    rate = [float(r[2]) for r in rows if r[0] == name]
    print(f"{name}: median {statistics.median(cpu):.3f} CPU-ms per 1,000 messages, "
          f"{statistics.median(rate):,.0f} msgs/s ({len(cpu)} runs)")
PY
