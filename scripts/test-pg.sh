#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests: a private data dir and a free loopback port, run as
# the unprivileged `postgres` user (the server refuses root). Trust authentication: it listens
# on 127.0.0.1 only and lives for one test run.
#   eval "$(bash scripts/test-pg.sh start)"   prints ZEROK_TEST_PG=… ZEROK_TEST_PGDATA=… exports
#   bash scripts/test-pg.sh stop DIR           stops it and removes DIR
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
as_postgres() { if [ "$(id -un)" = root ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
case "${1:-}" in
  start)
    dir=$(mktemp -d /tmp/zerok-pg.XXXXXX)
    [ "$(id -un)" != root ] || chown postgres "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_postgres "$PGBIN/initdb -D $dir/data -A trust -U zerok --no-sync -E UTF8 >/dev/null"
    as_postgres "$PGBIN/pg_ctl -D $dir/data -o '-c listen_addresses=127.0.0.1 -p $port -k $dir' -l $dir/log -w start >/dev/null"
    "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U zerok -d postgres -qc 'CREATE DATABASE zerok_test' >&2
    echo "export ZEROK_TEST_PG=postgres://zerok@127.0.0.1:$port/zerok_test ZEROK_TEST_PGDATA=$dir/data"
    ;;
  restart) # restart DATA_DIR MODE: stops the server (fast or immediate: a crash) and starts it again
    as_postgres "$PGBIN/pg_ctl -D $2 -m ${3:-fast} -w restart >/dev/null"
    ;;
  stop)
    as_postgres "$PGBIN/pg_ctl -D $2/data -m fast -w stop >/dev/null" || true
    rm -rf "$2"
    ;;
  *) echo "usage: $0 start | restart DATA_DIR [fast|immediate] | stop DIR" >&2; exit 2 ;;
esac
