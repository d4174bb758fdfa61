#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz) and runs each for a bounded time.
#   scripts/fuzz.sh [SECONDS]     default 30 per target
# New inputs that grow coverage are kept in build-fuzz/corpus/NAME (not committed); a
# crash leaves its reproducer in build-fuzz/crashes/NAME and fails the run: commit it to
# tests/fuzz/corpus/NAME, where the normal suite replays it (replay_NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}

bash scripts/install-deps.sh --fuzz
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDATALOADER_FUZZ=ON \
  -DDATALOADER_TESTS=OFF -DDATALOADER_BENCH=OFF -DDATALOADER_EXAMPLES=OFF >/dev/null
targets=(target json_body save_body text_array timestamp lsn)
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target per core at a time: each gets its full time, the run takes less.
run_one() {
  local name=$1 work=build-fuzz/corpus/$1 crashes=build-fuzz/crashes/$1
  mkdir -p "$work" "$crashes"
  if build-fuzz/fuzz_"$name" "$work" tests/fuzz/corpus/"$name" -max_total_time="$seconds" -max_len=65536 \
      -artifact_prefix="$crashes/" -print_final_stats=1 >build-fuzz/"$name".log 2>&1; then
    echo "fuzz $name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/"$name".log | grep -o '[0-9]*$') inputs in ${seconds} s, no crash"
  else
    echo "fuzz $name: FAILED, reproducer in $crashes:" >&2
    tail -n 30 build-fuzz/"$name".log >&2
    return 1
  fi
}
export -f run_one
export seconds
# xargs exits non-zero when any target failed.
printf '%s\n' "${targets[@]}" | xargs -P "$(nproc)" -I{} bash -c 'run_one "$1"' _ {}
