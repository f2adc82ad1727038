#!/usr/bin/env bash
# Install what the build needs from Debian packages, if it is missing.
# Usage: scripts/deps.sh [--check] [build|test|sanitize|fuzz|bench-serve]
# As root it runs apt-get; otherwise it prints the command to run.
# --check installs nothing: it only reports what is missing (exit 1).
set -euo pipefail

check_only=0
if [ "${1:-}" = "--check" ]; then check_only=1; shift; fi

want=(cmake ninja-build gcc make pkg-config libyaml-dev libjansson-dev libhiredis-dev
      libmicrohttpd-dev libseccomp-dev)
case "${1:-build}" in
  build) ;;
  test) want+=(libcmocka-dev valgrind python3 binutils redis-server nginx-core curl
               python3-prometheus-client clang-format git) ;;
  bench-serve) want+=(wrk curl) ;;
  sanitize) want+=(libcmocka-dev clang libclang-rt-14-dev) ;;
  fuzz) want+=(libcmocka-dev clang libclang-rt-14-dev) ;;
  *) echo "usage: $0 [--check] [build|test|sanitize|fuzz|bench-serve]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg -s "$p" >/dev/null 2>&1; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$check_only" -eq 1 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run: sudo apt-get install -y ${missing[*]} (or 'make test', which installs them)" >&2
  exit 1
elif [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
