#!/usr/bin/env bash
# bench/serve/bench_serve.sh — requests per second and p50/p99 latency of
# `cpex serve` (make bench-serve; docs/performance.md, docs/serve.md):
#   invoke       POST /v1/invoke, a tool call through the example gateway
#   null-post    the same bytes to /v1/null: HTTP only, no pipeline
#   authz        GET /v1/authz as nginx asks it, through examples/serve.yaml's plugins
#   null-get     the same request to /v1/null
# The pipeline's share is what an endpoint costs beyond its null twin.
#
# One server loads examples/gateway.yaml plus the plugins of
# examples/serve.yaml, with --threads 1 and --null-endpoint. On a machine
# with 2 CPUs or more the server is pinned to CPU 0 and wrk to CPU 1, so
# the two do not take turns on one core.
#
# Each case runs BENCH_REPS times, the four cases taking turns (so that
# whatever else the machine does weighs on all of them alike); the table
# gives the median of each figure.
#
#   bench/serve/bench_serve.sh BUILD_DIR [SOURCE_DIR]
#   BENCH_SECONDS (5) per run, BENCH_REPS (3), BENCH_CONNECTIONS (32),
#   BENCH_WARMUP (1) seconds before each run
set -euo pipefail

build="$(cd "${1:-build}" && pwd)"
src="$(cd "${2:-$(dirname "$0")/../..}" && pwd)"
here="$src/bench/serve"
secs="${BENCH_SECONDS:-5}"
reps="${BENCH_REPS:-3}"
conns="${BENCH_CONNECTIONS:-32}"
warmup="${BENCH_WARMUP:-1}"
tmp="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench-serve: wrk is missing: scripts/deps.sh bench-serve" >&2; exit 1; }

source "$here/common.sh"
bench_yaml "$build" "$src" "$tmp/bench.yaml" "$tmp"

pin_server=() pin_client=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_server=(taskset -c 0) pin_client=(taskset -c 1)
fi
"${pin_server[@]}" "$build/cpex" serve "$tmp/bench.yaml" --listen 127.0.0.1:0 --threads 1 \
  --null-endpoint 2>"$tmp/serve.err" &
server=$!
wait_up "$tmp/serve.err" "$server" || exit 1

# to_ms VALUE: wrk's "812.00us", "1.23ms", "1.01s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

# cpu_ticks: the server's CPU time so far (user + system, all its threads),
# in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

# run NAME LUA PATH: one measured run (after a warm-up); appends
# "NAME PATH RPS P50 P99 CPU_US_PER_REQUEST" to $tmp/results.
run() {
  local name="$1" lua="$2" path="$3" out c0 c1
  BENCH_PATH="$path" "${pin_client[@]}" wrk -t1 -c"$conns" -d"${warmup}s" -s "$here/$lua" "$url" >/dev/null
  c0="$(cpu_ticks)"
  out="$(BENCH_PATH="$path" "${pin_client[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$here/$lua" "$url")"
  c1="$(cpu_ticks)"
  if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
    echo "bench-serve: $name: some answers were not 2xx; the figures would not be the pipeline's:" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps p50 p99 n cpu
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  n="$(awk '/requests in/ {print $1}' <<<"$out")"
  cpu="$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')"
  echo "$name $path $rps $p50 $p99 $cpu" >>"$tmp/results"
}

echo "cpex serve: $conns connections, $reps runs of ${secs} s per case (medians), server --threads 1${pin_server:+ on CPU 0, wrk on CPU 1}"
for r in $(seq "$reps"); do
  run invoke invoke.lua /v1/invoke
  run null-post invoke.lua /v1/null
  run authz authz.lua /v1/authz
  run null-get authz.lua /v1/null
done

# The medians, and the pipeline's share of each request: by throughput,
# 1 - rps(endpoint) / rps(its null twin); by the server's CPU time per
# request, which other load on the machine disturbs much less.
python3 - "$tmp/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, path, *v = line.split()
    rows.setdefault(name, (path, []))[1].append([float(x) for x in v])
med = {}
print("%-10s %-12s %10s %9s %9s %11s   %s" % ("case", "path", "req/s", "p50 ms", "p99 ms",
      "CPU us/req", "req/s of each run"))
for name in ("invoke", "null-post", "authz", "null-get"):
    path, runs = rows[name]
    m = [statistics.median(r[i] for r in runs) for i in range(4)]
    med[name] = m
    print("%-10s %-12s %10.0f %9.3f %9.3f %11.1f   %s" % (name, path, m[0], m[1], m[2], m[3],
          " ".join("%.0f" % r[0] for r in runs)))
for ep, null in (("invoke", "null-post"), ("authz", "null-get")):
    print("%s: the pipeline's share: %.0f%% of the throughput cost (%.0f of %.0f us per request), "
          "%.0f%% of the server's CPU time (%.1f of %.1f us)"
          % (ep, 100 * (1 - med[ep][0] / med[null][0]), 1e6 / med[ep][0] - 1e6 / med[null][0],
             1e6 / med[ep][0], 100 * (1 - med[null][3] / med[ep][3]), med[ep][3] - med[null][3],
             med[ep][3]))
PY
# The server must have stayed healthy through it all.
if grep -E ': error: ' "$tmp/serve.err" >&2; then echo "bench-serve: the server logged errors" >&2; exit 1; fi
exit 0
