#!/usr/bin/env bash
# The whole "beyond one machine" setup on loopback, for trying it by hand: a private
# PostgreSQL primary, a streaming replica of it, two dataloader-server instances reading
# from the replica, and nginx in front (deploy/nginx.conf.template: each user's requests
# by a consistent hash of the id, the rest round robin).
#   cluster.sh start [DIR]   build if needed, start everything, seed demo users once,
#                            print the address and curl lines to try
#   cluster.sh stop [DIR]    stop everything (the data stays in DIR)
# DIR defaults to /var/tmp/asio-dataloader-cluster; DEMO_USERS (1000) users are seeded.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: cluster.sh start|stop [DIR]}
dir=${2:-/var/tmp/asio-dataloader-cluster}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

case "$cmd" in
  start)
    bash scripts/install-deps.sh
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DDATALOADER_TESTS=OFF -DDATALOADER_BENCH=OFF >/dev/null
    cmake --build build-release -j "$(nproc)" --target dataloader-server >/dev/null
    mkdir -p "$dir"
    primary=$(scripts/pg-server.sh start "$dir/primary")
    replica=$(scripts/pg-server.sh replica "$dir/primary" "$dir/replica")
    if [ ! -f "$dir/seeded" ]; then
      ./build-release/dataloader-server seed-demo --database-url "$primary" --users "${DEMO_USERS:-1000}" >/dev/null
      touch "$dir/seeded"
    fi
    instances=""
    for i in 1 2; do
      stop_pidfile "$dir/instance$i.pid"
      port=$(free_port)
      ./build-release/dataloader-server serve --database-url "$primary" --replica-url "$replica" \
        --listen "127.0.0.1:$port" >"$dir/instance$i.log" 2>&1 &
      echo $! >"$dir/instance$i.pid"
      instances="$instances server 127.0.0.1:$port;"
      for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    done
    stop_pidfile "$dir/nginx/nginx.pid"
    mkdir -p "$dir/nginx"
    listen=${CLUSTER_LISTEN:-127.0.0.1:$(free_port)}
    sed -e "s|@PREFIX@|$dir/nginx|g" -e "s|@LISTEN@|$listen|" -e "s|@INSTANCES@|$instances|" \
      deploy/nginx.conf.template >"$dir/nginx/nginx.conf"
    nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/nginx/nginx.out" 2>&1 &
    for _ in $(seq 50); do curl -s -o /dev/null "http://$listen/healthz" && break; sleep 0.1; done
    cat <<TRY
cluster in $dir: primary $primary
                 replica $replica
                 instances:$instances
                 nginx http://$listen

Try (each user's requests land on one instance, named in Dataloader-Instance):
  curl -si http://$listen/v1/users/user42/prefetch?memory_limit=5
  curl -si -X PUT http://$listen/v1/users/user42/profile -d '{"profile": "likes tea"}'
  curl -si -H 'Dataloader-Min-LSN: 0/1' http://$listen/v1/profiles?ids=user1,user42
  curl -s http://$listen/stats        # db.hosts: the primary and the replica
Stop with: scripts/cluster.sh stop $dir
TRY
    ;;
  stop)
    stop_pidfile "$dir/nginx/nginx.pid"
    for i in 1 2; do stop_pidfile "$dir/instance$i.pid"; done
    [ -d "$dir/replica" ] && scripts/pg-server.sh stop "$dir/replica"
    [ -d "$dir/primary" ] && scripts/pg-server.sh stop "$dir/primary"
    ;;
  *)
    echo "usage: cluster.sh start|stop [DIR]" >&2
    exit 2
    ;;
esac
