#!/usr/bin/env bash
# A private PostgreSQL server in a directory of its own, for tests, benchmarks and the demo.
#   pg-server.sh start DIR [--fast]   initdb (once) and start; prints the connection URL
#   pg-server.sh stop DIR             stop (the data stays)
#   pg-server.sh restart DIR          pg_ctl restart -m fast
#   pg-server.sh destroy DIR          stop and delete DIR
#   pg-server.sh url DIR              print the connection URL of a started server
#   pg-server.sh replica PRIMARY_DIR DIR
#                                     a streaming replica of the (started) server in
#                                     PRIMARY_DIR: pg_basebackup -R -X stream (once) through
#                                     a replication slot of its own, so the primary keeps the
#                                     WAL it has not received yet; started on its own port.
#                                     Prints its URL. start/stop/restart/url work on DIR as on
#                                     any server; destroy also drops the slot when the primary runs.
# As root, the server runs as the `postgres` system user (initdb refuses root).
# --fast turns durability off (fsync, full_page_writes): for throwaway test data only.
set -euo pipefail

usage="usage: pg-server.sh start|stop|restart|destroy|url DIR [--fast] | replica PRIMARY_DIR DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
fast=${3:-}
if [ "$cmd" = replica ]; then
  primary=$dir
  dir=${3:?$usage}
  fast=
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/pg_ctl" ] || { echo "pg-server: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url_of() {
  local port user
  port=$(cat "$1/port")
  user=$([ "$(id -u)" -eq 0 ] && echo postgres || id -un)
  echo "postgresql:///postgres?host=$1&port=$port&user=$user"
}
url() { url_of "$dir"; }

running_in() { [ -f "$1/data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }
running() { running_in "$dir"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A replication slot's name: letters, digits and underscores only.
slot_of() { echo "replica_$(basename "$1" | tr -c 'a-zA-Z0-9_\n' '_' | tr 'A-Z' 'a-z')"; }

start_server() {
  if ! running; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 0755 "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        $([ "$(id -u)" -eq 0 ] && echo --username=postgres) >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
      port=$(free_port)
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
    start_server
    if [ ! -f "$dir/primary" ]; then  # a replica has the primary's extensions, and is read-only
      PGOPTIONS="-c client_min_messages=warning" as_owner "$bindir/psql" -X -q -d "$(url)" \
        -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    fi
    url
    ;;
  replica)
    running_in "$primary" || { echo "pg-server: the primary in $primary is not running" >&2; exit 1; }
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; chmod 0755 "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      slot=$(slot_of "$dir")
      # The slot first: WAL written from now on stays on the primary until the replica has it.
      # (psql interpolates :'slot' in its input, not in -c.)
      echo "SELECT pg_create_physical_replication_slot(:'slot') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot')" |
        as_owner "$bindir/psql" -X -q -d "$(url_of "$primary")" -v ON_ERROR_STOP=1 -v slot="$slot" >/dev/null
      as_owner "$bindir/pg_basebackup" -D "$dir/data" -R -X stream -S "$slot" -c fast \
        -d "$(url_of "$primary")" >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
      port=$(free_port)
      echo "$port" | as_owner tee "$dir/port" >/dev/null
      echo "$primary" | as_owner tee "$dir/primary" >/dev/null
      # The copied postgresql.conf is the primary's: the later lines win.
      {
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "hot_standby = on"
        echo "hot_standby_feedback = on"
      } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    start_server
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
    if [ -f "$dir/primary" ] && running_in "$(cat "$dir/primary")"; then
      echo "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot'" |
        as_owner "$bindir/psql" -X -q -d "$(url_of "$(cat "$dir/primary")")" -v slot="$(slot_of "$dir")" >/dev/null || true
    fi
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
