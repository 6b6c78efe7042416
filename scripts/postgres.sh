#!/usr/bin/env bash
# Starts a private PostgreSQL server from Debian's package (postgresql) for Lithos, on
# loopback, in a directory of its own, and creates a database with the C collation Lithos
# needs. Runs the server as the `postgres` user (else `nobody`) when called as root, since
# PostgreSQL refuses root (that user must be able to reach DIR: its parents need o+x).
#
#   scripts/postgres.sh start DIR [PORT]   prints the database URL
#   scripts/postgres.sh stop DIR           stops it (fast shutdown) and leaves DIR
#
# For a [storage] section: backend = "postgres", url = "<the printed URL>".
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?directory}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$bin/postgres" ] || { echo "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2; exit 1; }
as_owner=()
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || owner=nobody
  as_owner=(runuser -u "$owner" --)
fi
case "$cmd" in
  start)
    port="${3:-$((20000 + RANDOM % 10000))}"
    mkdir -p "$dir"
    [ ${#as_owner[@]} -gt 0 ] && chown "$owner" "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      "${as_owner[@]}" "$bin/initdb" -D "$dir/data" --auth=trust --no-locale --encoding=UTF8 -U lithos >/dev/null
    fi
    "${as_owner[@]}" "$bin/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -c port="$port" \
      -c unix_socket_directories="$dir" -c max_connections=200 > "$dir/server.log" 2>&1 &
    for _ in $(seq 100); do
      "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
      sleep 0.1
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { cat "$dir/server.log" >&2; exit 1; }
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U lithos -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'lithos'" | grep -q 1 \
      || "$bin/psql" -q -h 127.0.0.1 -p "$port" -U lithos -d postgres -c \
        "CREATE DATABASE lithos TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    echo "postgresql://lithos@127.0.0.1:$port/lithos"
    ;;
  stop)
    # The postmaster's PID, from its lock file (what started it may have been runuser).
    pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)" || exit 0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
  *) echo "start|stop" >&2; exit 2 ;;
esac
