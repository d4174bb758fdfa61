#!/usr/bin/env bash
# CTest fixture: starts a private PostgreSQL for the tests labelled `pg`, and stops it.
#   fixture.sh start ENV_FILE   writes URL= (and DIR= when it started the server)
#   fixture.sh stop ENV_FILE
# With TEST_DATABASE_URL set, the tests use that server and nothing is started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
env_file=${2:?usage: fixture.sh start|stop ENV_FILE}
case "$1" in
  start)
    if [ -n "${TEST_DATABASE_URL:-}" ]; then
      echo "URL=$TEST_DATABASE_URL" >"$env_file"
      exit 0
    fi
    dir=$(mktemp -d /tmp/dataloader-test-pg.XXXXXX)
    url=$("$here/../../scripts/pg-server.sh" start "$dir" --fast)
    printf 'URL=%s\nDIR=%s\n' "$url" "$dir" >"$env_file"
    ;;
  stop)
    if [ -f "$env_file" ]; then
      dir=$(sed -n 's/^DIR=//p' "$env_file")
      [ -n "$dir" ] && "$here/../../scripts/pg-server.sh" destroy "$dir"
      rm -f "$env_file"
    fi
    ;;
esac
