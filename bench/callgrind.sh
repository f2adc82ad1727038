#!/usr/bin/env bash
# bench/callgrind.sh — instructions per invoke (per operation for the setup
# cases) of every cpex_bench case, counted by callgrind: figures that do not
# move with the load of the machine. `make bench-callgrind` runs it.
#
# usage: bench/callgrind.sh [--build DIR] [--jobs N] [--table] [--all] [--case NAME]...
#   --jobs N     valgrind runs at a time (default 2)
#   --table      print the table instead of the JSON
#   --all        also the cases left out by default (10 MB payloads and
#                registering 1,000 hooks: minutes each under valgrind)
#   --case NAME  only these cases (a left-out one too)
#
# For each case of `cpex_bench --callgrind-plan` it runs
#     valgrind --tool=callgrind --fair-sched=yes cpex_bench --case NAME --iters N --reps 1 --no-allocs
# twice, with N and with 2N iterations, and takes (count(2N) - count(N)) / N:
# starting the program, building the fixture, the checks and the first
# invoke's warm-up are in both counts and cancel. Invoke cases count every
# instruction of the process (worker threads included: --fair-sched=yes lets
# them, and the ticker of util/coarse_clock.h, run as they would outside
# valgrind), less the ticker's own thread (--separate-threads=yes: one file
# per thread, NAME.N.out-NN); setup cases count
# only the measured function (--toggle-collect=bench_setup_measured), so
# creating and freeing the manager stays out as it does in the timed run.
# Then `cpex_bench --from-callgrind` prints the figures in the shape of
# `cpex_bench --json` ("unit": "instructions"), on stdout, and the file is
# kept as DIR/bench-callgrind.json (the table as DIR/bench-callgrind.txt).
# Cases left out (the slow ones unless asked for, threads, slots this build
# lacks) say why, in the output's "skipped".
set -euo pipefail

build=build
jobs=2
table=0
all=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --table) table=1; shift ;;
    --all) all=1; shift ;;
    --case) only+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "callgrind.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bench=$build/cpex_bench
if [ ! -x "$bench" ]; then
  echo "callgrind.sh: $bench not found; build first (make build)" >&2
  exit 1
fi
if ! command -v valgrind >/dev/null; then
  echo "callgrind.sh: valgrind is not installed (scripts/deps.sh test installs it)" >&2
  exit 1
fi
case "$jobs" in ''|*[!0-9]*|0) echo "callgrind.sh: --jobs wants a positive number" >&2; exit 2 ;; esac

work=$build/bench-callgrind
rm -rf "$work"
mkdir -p "$work"

# The instruction total of one callgrind output file.
total() {
  awk '/^totals:/ { print $2; found = 1; exit } /^summary:/ { s = $2 }
       END { if (!found && s != "") print s }' "$1"
}

# The total of a run written one file per thread (OUT-01, OUT-02, ...),
# less the thread of the deadline clock's ticker (util/coarse_clock.c): it
# wakes every 2 ms of wall time, and valgrind's wall time is not the
# program's, so its count would only add noise.
total_threads() {
  local sum=0 f t
  for f in "$1"-[0-9]*; do
    [ -e "$f" ] || continue
    grep -q 'ticker_main' "$f" && continue
    t=$(total "$f")
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}

# One case at N and 2N iterations; writes "NAME N IR_N IR_2N" to $work/NAME.row.
run_case() {
  local name=$1 n=$2 toggle=$3 ir=() k
  local -a extra=()
  if [ "$toggle" != "-" ]; then
    extra=(--collect-atstart=no "--toggle-collect=$toggle")
  else
    extra=(--separate-threads=yes)
  fi
  for k in "$n" $((2 * n)); do
    if ! valgrind --tool=callgrind --fair-sched=yes "${extra[@]}" --callgrind-out-file="$work/$name.$k.out" \
         "$bench" --case "$name" --iters "$k" --reps 1 --no-allocs \
         >"$work/$name.$k.log" 2>&1; then
      echo "callgrind.sh: $name failed with $k iterations; see $work/$name.$k.log" >&2
      return 1
    fi
    if [ "$toggle" != "-" ]; then
      ir+=("$(total "$work/$name.$k.out")")
    else
      ir+=("$(total_threads "$work/$name.$k.out")")
    fi
  done
  echo "$name $n ${ir[0]} ${ir[1]}" >"$work/$name.row"
  awk -v a="${ir[0]}" -v b="${ir[1]}" -v n="$n" -v c="$name" \
    'BEGIN { printf "callgrind.sh: %s: %.1f instructions per iteration\n", c, (b - a) / n }' >&2
}

start=$(date +%s)
failed=0
running=0
while read -r name n toggle rest; do
  if [ "$name" = "#" ]; then
    echo "callgrind.sh: skipped: $n $toggle $rest" >&2
    continue
  fi
  slow=0
  if [ "$name" = "slow" ]; then
    slow=1
    name=$n n=$toggle toggle=$rest
  fi
  if [ ${#only[@]} -gt 0 ]; then
    printf '%s\n' "${only[@]}" | grep -qx -- "$name" || continue
  elif [ "$slow" -eq 1 ] && [ "$all" -eq 0 ]; then
    echo "callgrind.sh: left out (slow; --all or --case $name runs it): $name" >&2
    continue
  fi
  run_case "$name" "$n" "$toggle" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done < <("$bench" --callgrind-plan)
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done

cat "$work"/*.row >"$work/counts.txt" 2>/dev/null || : >"$work/counts.txt"
"$bench" --from-callgrind "$work/counts.txt" --json >"$build/bench-callgrind.json" || failed=1
"$bench" --from-callgrind "$work/counts.txt" >"$build/bench-callgrind.txt" || failed=1
if [ "$table" -eq 1 ]; then
  cat "$build/bench-callgrind.txt"
else
  cat "$build/bench-callgrind.json"
fi
echo "callgrind.sh: done in $(( $(date +%s) - start )) s; $build/bench-callgrind.json and" \
     "$build/bench-callgrind.txt hold the figures, $work the callgrind files" >&2
exit "$failed"
