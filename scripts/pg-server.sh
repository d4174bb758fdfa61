#!/usr/bin/env bash
# A private PostgreSQL server in a directory of its own, for tests, benchmarks and the demo.
#   pg-server.sh start DIR [--fast]   initdb (once) and start; prints the connection URL
#   pg-server.sh stop DIR             stop (the data stays)
#   pg-server.sh restart DIR          pg_ctl restart -m fast
#   pg-server.sh destroy DIR          stop and delete DIR
#   pg-server.sh url DIR              print the connection URL of a started server
# As root, the server runs as the `postgres` system user (initdb refuses root).
# --fast turns durability off (fsync, full_page_writes): for throwaway test data only.
set -euo pipefail

cmd=${1:?usage: pg-server.sh start|stop|restart|destroy|url DIR [--fast]}
dir=${2:?usage: pg-server.sh start|stop|restart|destroy|url DIR [--fast]}
fast=${3:-}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/pg_ctl" ] || { echo "pg-server: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() {
  local port user
  port=$(cat "$dir/port")
  user=$([ "$(id -u)" -eq 0 ] && echo postgres || id -un)
  echo "postgresql:///postgres?host=$dir&port=$port&user=$user"
}

running() { [ -f "$dir/data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 0755 "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        $([ "$(id -u)" -eq 0 ] && echo --username=postgres) >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      echo "$port" | as_owner tee "$dir/port" >/dev/null
      {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "shared_preload_libraries = 'pg_stat_statements'"
        echo "max_connections = 200"
        echo "log_min_messages = warning"
        if [ "$fast" = "--fast" ]; then
          echo "fsync = off"
          echo "synchronous_commit = off"
          echo "full_page_writes = off"
        fi
      } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    if ! running; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    PGOPTIONS="-c client_min_messages=warning" as_owner "$bindir/psql" -X -q -d "$(url)" \
      -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    url
    ;;
  stop)
    if running; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    ;;
  restart)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 30 restart >/dev/null
    ;;
  destroy)
    if [ -d "$dir/data" ] && running; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true; fi
    rm -rf "$dir"
    ;;
  url)
    url
    ;;
  *)
    echo "pg-server: unknown command $cmd" >&2
    exit 2
    ;;
esac
