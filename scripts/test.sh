#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as errors, runs CTest.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-sanitize/
#   scripts/test.sh --tsan       ThreadSanitizer build in build-tsan/: every test that runs
#                                more than one thread (loader threads, pool, store, HTTP
#                                routes, the server end to end with --threads 2)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
# Line tables only (-g1): enough for backtraces and sanitizer reports with file:line, and
# about a quarter less compile time than full debug information (-g) on this code base.
# -O1: the suite asserts behaviour, not speed (benchmarks build their own Release tree),
# and -O1 compiles faster; the whole tree built warning-free and passed at -O1 in 5 min.
optimized=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
# Unity builds: each batch of a target's sources is compiled as one file, so Asio's,
# Beast's and the project's headers are parsed once per batch, not once per source (a
# clean build took 3 min 36 s instead of 5 min 20 s on 2 cores). Incremental builds of
# one's own tree are quicker without: configure without this flag there.
unity=-DCMAKE_UNITY_BUILD=ON
cmake_args=("${optimized[@]}" -DDATALOADER_WERROR=ON "$unity")
ctest_args=()
build_targets=()
case "${1:-}" in
  --sanitize)
    build_dir=build-sanitize
    # The benchmarks' smoke run, the package test and the slow-client run (timeouts, not
    # memory) add nothing under the sanitizers that the normal run does not check; leaving
    # them out keeps CI within its budget. Nor do the dashboard's browser test (a browser and
    # a static page; the routes under it run here in http_e2e) and the TLS test (libpq's
    # TLS; the same connection code runs here without it).
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DDATALOADER_WERROR=ON -DDATALOADER_SANITIZE=ON
                -DDATALOADER_BENCH=OFF "$unity")
    ctest_args=(-E "^(package_consumer|slowloris_quick|http_dashboard|http_tls)$")
    ;;
  --tsan)
    build_dir=build-tsan
    # -O1: what ThreadSanitizer's authors suggest, and faster to compile than -O2.
    cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
                -DDATALOADER_WERROR=ON -DDATALOADER_TSAN=ON -DDATALOADER_BENCH=OFF "$unity")
    # Single-threaded logic (the loader's model and unit tests, parsers) gains nothing
    # from TSan; the package test only installs and links.
    # (The embedding example's threads are the server's, which http_e2e covers.)
    ctest_args=(-R "^loader: a loader on a strand|^pg:|^store:|^http routes:|^http_e2e$|^http_faults$")
    build_targets=(--target loader_tests pg_tests store_tests http_route_tests dataloader-server)
    ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--sanitize | --tsan]" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" "${build_targets[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 300 "${ctest_args[@]}"
