#!/usr/bin/env bash
# Telemetry ingest: Lithos reports against Mosquitto publishes (Debian package), same
# machine, same run, interleaved.
#
#   bash benches/compare-mqtt.sh                 # 3 repetitions (about 10 minutes)
#   REPS=1 bash benches/compare-mqtt.sh          # a quick look
#   ONLY="1:8:0" REPS=1 ...                      # one configuration (QoS:in flight:consumer)
#   FORMATS="xml" ...                            # Lithos in XML only (default "xml bxmpp")
#   DEVICES=1000 MESSAGES=200 ...                # the load's size (the defaults)
#   LITHOS_BASE=/path/to/old/lithosd ...         # also an A/B: another build of lithosd
#                                                # ("lithos-base-<format>", with its own
#                                                # data directory)
#   LITHOS_PG=1 ...                              # also lithosd on PostgreSQL ("lithos-pg-<format>"),
#                                                # a server scripts/postgres.sh starts
#   PROFILE=1 ONLY="1:8:0" FORMATS=xml REPS=1 ...
#                                                # also `perf record` lithosd during its runs
#                                                # (target/compare-mqtt/perf-*.data)
#
# The load, the same on both sides: DEVICES devices, each on its own connection, send
# MESSAGES readings each, at QoS 0 or 1, with 1 or 8 QoS 1 readings in flight, and either no
# consumer or one consumer receiving every reading live. Lithos: temperature reporters
# (things registered in band, plaintext, XML or BXMPP) report to the server, which stores
# every report durably (QoS 1: acknowledged after its commit) and forwards it live to the
# owner when the owner follows the thing's reports. Mosquitto: MQTT 3.1.1 clients publish to
# `things/<n>/report` (persistence off, anonymous); the consumer subscribes to
# `things/+/report` at QoS 0 (Lithos's live forward is not acknowledged either). A QoS 0 run
# ends with a QoS 1 "fence" per device whose acknowledgement says the server took everything
# before it (on Mosquitto, to a topic the consumer does not follow).
#
# For every repetition, configuration and server, a fresh server process (Lithos keeps its
# data directory across runs, so its history grows as it would in use); the server's CPU
# time and resident memory are read from /proc. JSON lines are kept in target/compare-mqtt/,
# and a table of medians and ratios is printed at the end. Every process it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lithos-config.sh
REPS="${REPS:-3}"
DEVICES="${DEVICES:-1000}"
MESSAGES="${MESSAGES:-200}"
FORMATS="${FORMATS:-xml bxmpp}"
# QoS:in flight:consumer
CONFIGS="${ONLY:-1:8:0 1:1:0 0:8:0 1:8:1 1:1:1 0:8:1}"
PROFILE="${PROFILE:-0}"
OUT=target/compare-mqtt
rm -rf "$OUT"
mkdir -p "$OUT"
export DEBIAN_FRONTEND=noninteractive
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  apt-get install -y mosquitto >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y mosquitto >/dev/null; }
fi
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
# The package's own service is not used (and must not hold a port).
service mosquitto stop >/dev/null 2>&1 || true
ulimit -n "$(ulimit -Hn)"
if [ -z "${LITHOSD:-}" ]; then
  cargo build -q --release -p lithosd -p lithos-loadgen
fi
LITHOSD="${LITHOSD:-$PWD/target/release/lithosd}"
LOADGEN="${LOADGEN:-$PWD/target/release/lithos-loadgen}"
WORK="$(mktemp -d)"
chmod 755 "$WORK"
PID=""
PERF_PID=""
cleanup() {
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null || true
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ -f "$WORK/pg/data/postmaster.pid" ] && bash scripts/postgres.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

stop() {
  if [ -n "$PERF_PID" ]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
  fi
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}

# Lithos: one data directory per build for the whole run, the operator created once.
export LITHOS_THINGS_PORT=16222
setup_lithos() { # dir binary [extra configuration]
  mkdir -p "$1"
  lithos_config "$1" 15222 "[modules.operator]
operators = [\"operator\"]
${3:-}" > "$1/lithos.toml"
  echo op-pass | "$2" --config "$1/lithos.toml" user add operator >/dev/null
}
setup_lithos "$WORK/lithos" "$LITHOSD"
[ -z "${LITHOS_BASE:-}" ] || setup_lithos "$WORK/lithos-base" "$LITHOS_BASE"
if [ "${LITHOS_PG:-0}" = 1 ]; then
  PG_URL="$(bash scripts/postgres.sh start "$WORK/pg")"
  setup_lithos "$WORK/lithos-pg" "$LITHOSD" "[storage]
backend = \"postgres\"
url = \"$PG_URL\""
fi

run_lithos() { # format qos in_flight consumer [binary dir label]
  local bin="${5:-$LITHOSD}" LDIR="${6:-$WORK/lithos}" label="${7:-lithos-$1}"
  "$bin" --config "$LDIR/lithos.toml" > "$LDIR/server.log" 2>&1 &
  PID=$!
  wait_port 15222
  wait_port 16222
  local extra=()
  [ "$4" = 1 ] && extra+=(--consumer)
  "$LOADGEN" reports --addr 127.0.0.1:15222 --things-addr 127.0.0.1:16222 \
    --password op-pass --server-pid "$PID" --format "$1" --label "$label" \
    --devices "$DEVICES" --messages "$MESSAGES" --qos "$2" --in-flight "$3" "${extra[@]}" \
    >> "$OUT/results.jsonl" 2> "$LDIR/loadgen.err" &
  local gen=$!
  if [ "$PROFILE" = 1 ]; then
    # From the start of the measured phase (the set-up's logins would fill the profile).
    while kill -0 "$gen" 2>/dev/null && ! grep -q measuring "$LDIR/loadgen.err"; do sleep 0.05; done
    perf record -F 999 --call-graph dwarf,16384 -o "$OUT/perf-$1-$2-$3-$4-$(date +%s).data" \
      -p "$PID" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  wait "$gen" || true
  tail -1 "$OUT/results.jsonl"
  stop
}

run_mosquitto() { # qos in_flight consumer
  local dir="$WORK/mosquitto"
  mkdir -p "$dir"
  cat > "$dir/mosquitto.conf" <<CONF
listener 11883 127.0.0.1
allow_anonymous true
persistence false
log_dest none
max_connections -1
max_inflight_messages 0
max_queued_messages 0
CONF
  "$MOSQUITTO" -c "$dir/mosquitto.conf" > "$dir/server.log" 2>&1 &
  PID=$!
  wait_port 11883
  local extra=()
  [ "$3" = 1 ] && extra+=(--consumer)
  "$LOADGEN" mqtt --addr 127.0.0.1:11883 --server-pid "$PID" --label mosquitto \
    --devices "$DEVICES" --messages "$MESSAGES" --qos "$1" --in-flight "$2" "${extra[@]}" \
    | tee -a "$OUT/results.jsonl"
  stop
}

run_lithos_all() { # qos in_flight consumer
  for f in $FORMATS; do
    run_lithos "$f" "$@"
    [ -z "${LITHOS_BASE:-}" ] || run_lithos "$f" "$@" "$LITHOS_BASE" "$WORK/lithos-base" "lithos-base-$f"
    [ "${LITHOS_PG:-0}" != 1 ] || run_lithos "$f" "$@" "$LITHOSD" "$WORK/lithos-pg" "lithos-pg-$f"
  done
}

for rep in $(seq "$REPS"); do
  echo "== repetition $rep of $REPS" >&2
  for c in $CONFIGS; do
    IFS=: read -r qos win cons <<< "$c"
    # Alternate who goes first, so neither always runs on a machine the other warmed.
    if [ $((rep % 2)) = 1 ]; then
      run_mosquitto "$qos" "$win" "$cons"
      run_lithos_all "$qos" "$win" "$cons"
    else
      run_lithos_all "$qos" "$win" "$cons"
      run_mosquitto "$qos" "$win" "$cons"
    fi
  done
done
echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1)" | tee "$OUT/versions.txt"
python3 "$(dirname "$0")/compare_mqtt.py" "$OUT/results.jsonl" | tee "$OUT/report.md"
