#!/usr/bin/env bash
# fuzz/run.sh — build the libFuzzer targets and run one of them.
#
# Usage: fuzz/run.sh TARGET SECONDS [extra libFuzzer options...]
#        fuzz/run.sh --build-only
#   TARGET   kind | config | request | manifest | reply   (or fuzz_kind, ...)
#   SECONDS  how long to fuzz (e.g. 30 in CI, 3600 or more for a long run)
#
# Builds with clang, -fsanitize=fuzzer,address,undefined, in build-fuzz
# (BUILD_FUZZ=<dir> to change). The seed corpus fuzz/corpus/<target> is
# read, never written: inputs the run discovers go to
# build-fuzz/corpus/<target> (kept between runs, so a long run resumes
# where the last one stopped). A crash, leak or timeout stops the run with
# status 1 and leaves the input in build-fuzz/artifacts/<target>/ —
# reproduce it with `build-fuzz/fuzz/fuzz_<target> <that file>`, then turn
# it into a regression test (docs/testing.md).
#
# Environment: FUZZ_JOBS=N runs N fuzzing processes in parallel (default 1);
# FUZZ_MAX_LEN caps the input size (default 4096, 16384 for config).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_FUZZ:-$root/build-fuzz}"
targets=(kind config request manifest reply)

usage() {
    echo "usage: $0 TARGET SECONDS [libFuzzer options...] | $0 --build-only" >&2
    echo "  targets: ${targets[*]}" >&2
    exit 2
}

build_all() {
    "$root/scripts/deps.sh" fuzz
    if [ ! -f "$build/build.ninja" ]; then
        CC=clang cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DCPEX_FUZZ=ON -DCPEX_SANITIZE=address,undefined -DCPEX_BUILD_TESTS=OFF >/dev/null
    fi
    cmake --build "$build" --target fuzz_all -j "${JOBS:-2}"
}

[ $# -ge 1 ] || usage
if [ "$1" = "--build-only" ]; then
    build_all
    exit 0
fi
[ $# -ge 2 ] || usage
target="${1#fuzz_}"
seconds="$2"
shift 2
case " ${targets[*]} " in
    *" $target "*) ;;
    *) echo "unknown target '$target'" >&2; usage ;;
esac
case "$seconds" in
    '' | *[!0-9]*) echo "SECONDS must be a whole number (got '$seconds')" >&2; usage ;;
esac

build_all

work="$build/corpus/$target"
artifacts="$build/artifacts/$target"
mkdir -p "$work" "$artifacts"
max_len="${FUZZ_MAX_LEN:-4096}"
[ "$target" = config ] && max_len="${FUZZ_MAX_LEN:-16384}"
opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
      -artifact_prefix="$artifacts/" -print_final_stats=1)
[ -f "$root/fuzz/dict/$target.dict" ] && opts+=(-dict="$root/fuzz/dict/$target.dict")
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
    opts+=(-fork="$FUZZ_JOBS")
fi

echo "fuzz: $target for ${seconds}s (corpus $work + $root/fuzz/corpus/$target)" >&2
log="$build/fuzz-$target.log"
set +e
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$build/fuzz/fuzz_$target" "${opts[@]}" "$@" "$work" "$root/fuzz/corpus/$target" 2>"$log"
status=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
if [ $status -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED after ${execs:-?} executions; artifacts in $artifacts (log: $log)" >&2
    exit 1
fi
echo "fuzz: $target ok: ${execs:-?} executions in ${seconds}s, ${cov:-cov: ?} edges, corpus $(ls "$work" | wc -l) files" >&2
