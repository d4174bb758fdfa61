#!/usr/bin/env bash
# CTest fixture: starts a private PostgreSQL for the tests labelled `pg`, and stops it.
#   fixture.sh start ENV_FILE   writes URL= (and DIR= when it started the server)
#   fixture.sh stop ENV_FILE
#   fixture.sh replica-start ENV_FILE  adds REPLICA_URL= and REPLICA_DIR=: a streaming
#                                      replica of the server the fixture started
#   fixture.sh replica-stop ENV_FILE
# With TEST_DATABASE_URL set, the tests use that server and nothing is started (no replica
# either: the replica tests skip).
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
  replica-start)
    dir=$(sed -n 's/^DIR=//p' "$env_file")
    [ -n "$dir" ] || exit 0
    url=$("$here/../../scripts/pg-server.sh" replica "$dir" "$dir-replica")
    printf 'REPLICA_URL=%s\nREPLICA_DIR=%s\n' "$url" "$dir-replica" >>"$env_file"
    ;;
  replica-stop)
    if [ -f "$env_file" ]; then
      dir=$(sed -n 's/^REPLICA_DIR=//p' "$env_file")
      [ -n "$dir" ] && "$here/../../scripts/pg-server.sh" destroy "$dir"
      sed -i '/^REPLICA_/d' "$env_file"
    fi
    ;;
  stop)
    if [ -f "$env_file" ]; then
      dir=$(sed -n 's/^DIR=//p' "$env_file")
      [ -n "$dir" ] && "$here/../../scripts/pg-server.sh" destroy "$dir"
      rm -f "$env_file"
    fi
    ;;
esac
