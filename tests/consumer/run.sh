#!/usr/bin/env bash
# The installed package as a user meets it: `cmake --install` into a temporary prefix,
# then a project outside the source tree finds it with find_package(dataloader), builds
# a loader-only program (whose binary must not depend on libpq) and a dataloader::pg
# program that talks to the test server.
#   run.sh BUILD_DIR ENV_FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR ENV_FILE}
url=$(sed -n 's/^URL=//p' "${2:?usage: run.sh BUILD_DIR ENV_FILE}")
work=$(mktemp -d /tmp/dataloader-consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A package built with sanitizers (scripts/test.sh --sanitize) needs its users to link
# their runtimes too.
flags=()
if grep -q '^DATALOADER_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  flags=(-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined)
fi
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release -DWITH_PG=ON \
  "${flags[@]}" >/dev/null
cmake --build "$work/build" -j "$(nproc)" >/dev/null

"$work/build/loader_only"
if ldd "$work/build/loader_only" | grep -q libpq; then
  echo "consumer: loader_only depends on libpq:" >&2
  ldd "$work/build/loader_only" >&2
  exit 1
fi
echo "consumer: loader_only does not depend on libpq"
"$work/build/with_pg" "$url"
