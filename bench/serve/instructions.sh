#!/usr/bin/env bash
# bench/serve/instructions.sh — instructions per request of `cpex serve`
# (callgrind: repeatable to the instruction, unlike timings on a shared
# machine), for the four cases of bench_serve.sh. Each case runs the server
# under callgrind twice, with N and 3N requests on one kept-alive
# connection; the difference over 2N is the cost of one request, start-up
# and shutdown cancelled out. All threads of the server count (the HTTP
# thread, the manager's workers running fire-and-forget handlers).
#
#   bench/serve/instructions.sh BUILD_DIR [SOURCE_DIR]      (N: BENCH_N, 500)
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
src="$(cd "${2:-$(dirname "$0")/../..}" && pwd)"
n="${BENCH_N:-500}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
command -v valgrind >/dev/null || { echo "instructions: valgrind is missing" >&2; exit 1; }

source "$(dirname "$0")/common.sh"
bench_yaml "$build" "$src" "$tmp/bench.yaml" "$tmp"

# measure CASE COUNT: total instructions of a server that answered COUNT requests.
measure() {
  local case="$1" count="$2" pid
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$case.$count" \
    "$build/cpex" serve "$tmp/bench.yaml" --listen 127.0.0.1:0 --threads 1 --null-endpoint \
    2>"$tmp/err" &
  pid=$!
  wait_up "$tmp/err" "$pid" || exit 1
  python3 - "$url" "$case" "$count" <<'PY'
import http.client, sys, urllib.parse
url, case, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
for i in range(count):
    if case in ("invoke", "null-post"):
        body = ('{"hook":"cmf.tool_pre_invoke","extensions":{"security":{"subject":{"id":"bench-%d",'
                '"type":"user"}},"request":{"request_id":"r-%d"}},"payload":{"role":"assistant",'
                '"content":[{"content_type":"tool_call","content":{"tool_call_id":"call-1","name":'
                '"search_docs","arguments":{"query":"quarterly report for jane.doe@example.com",'
                '"limit":5}}}]}}' % (i, i))
        c.request("POST", "/v1/invoke" if case == "invoke" else "/v1/null", body=body,
                  headers={"Content-Type": "application/json"})
    else:
        c.request("GET", "/v1/authz" if case == "authz" else "/v1/null",
                  headers={"X-Original-URI": "/api/items/%d?view=full" % (i % 5000),
                           "X-Original-Method": "GET", "X-Forwarded-Host": "shop.example",
                           "X-Forwarded-Proto": "https", "Authorization": "Bearer bench-token"})
    r = c.getresponse(); r.read()
    assert r.status == 200, (case, r.status)
PY
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^summary:/ {print $2} /^totals:/ {print $2}' "$tmp/cg.$case.$count" | tail -1
}

printf '%-10s %14s\n' case instr/request
for case in invoke null-post authz null-get; do
  a="$(measure "$case" "$n")"
  b="$(measure "$case" $((3 * n)))"
  printf '%-10s %14.0f\n' "$case" "$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN {print (b - a) / (2 * n)}')"
done
