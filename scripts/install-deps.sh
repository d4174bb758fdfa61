#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test and benchmark.
# Idempotent: when everything is present it only checks and returns in about a second.
#   install-deps.sh          what the build, the tests and the benchmarks need
#   install-deps.sh --fuzz   also clang-14 and its libFuzzer runtime (scripts/fuzz.sh)
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libboost1.81-dev libpq-dev nlohmann-json3-dev doctest-dev libbenchmark-dev
  postgresql postgresql-contrib
  curl python3 procps openssl valgrind wrk gnuplot-nox
  nginx-light
  chromium chromium-driver fonts-dejavu-core
)
if [ "${1:-}" = "--fuzz" ]; then packages+=(clang-14 libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (or install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (nginx, postgresql) must not start it on install: the project
# runs its own on loopback ports. policy-rc.d says so to invoke-rc.d for this install only.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
