#!/usr/bin/env bash
# The service on demo data, on a fresh Debian 12 machine: installs what is missing,
# builds, starts a private PostgreSQL unless DATABASE_URL is set, migrates, seeds demo
# users (DEMO_USERS, default 10000) and serves on DATALOADER_LISTEN (127.0.0.1:8080).
# A second run reuses the build, the server and the seeded data. Extra arguments go to
# `dataloader-server serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DDATALOADER_TESTS=OFF -DDATALOADER_BENCH=OFF >/dev/null
cmake --build build-release -j "$(nproc)" --target dataloader-server

state=${DATALOADER_DEMO_DIR:-/var/tmp/asio-dataloader-demo}
mkdir -p "$state"
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(scripts/pg-server.sh start "$state/pg")
  echo "demo: private PostgreSQL at $state/pg"
fi
export DATABASE_URL

users=${DEMO_USERS:-10000}
marker="$state/seeded-$(printf '%s' "$DATABASE_URL" | md5sum | cut -c1-12)-$users"
if [ ! -f "$marker" ]; then
  ./build-release/dataloader-server seed-demo --users "$users" --memories-per-user 10
  touch "$marker"
fi

listen=${DATALOADER_LISTEN:-127.0.0.1:8080}
cat <<TRY

Try:
  curl -s http://$listen/v1/users/user42/prefetch?memory_limit=5
  curl -s 'http://$listen/v1/profiles?ids=user1,user2,nobody'
  curl -s -X PUT http://$listen/v1/users/user42/profile -d '{"profile": "likes tea"}'
  curl -s -X POST http://$listen/v1/memories -d '{"memories": [{"user_id": "user42", "category": "GOAL", "key": "run", "value": "10 km"}]}'
  curl -s -X POST http://$listen/v1/users/user42/memories/search -d '{"categories": ["GOAL", "FACT"], "limit_per_category": 3}'
  curl -s http://$listen/stats
  curl -s http://$listen/metrics

TRY
exec ./build-release/dataloader-server serve --listen "$listen" "$@"
